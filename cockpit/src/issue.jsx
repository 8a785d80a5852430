/* global cockpit */
// Admin: issue a pass. The lifetime bounds come from `tapctl policy check
// --json`; every field goes to tapctl as its own argument and tapctl judges
// it (its refusal is shown inline). The new pass is shown once; closing the
// dialog drops it from the page's state, so nothing of it stays in the DOM.
import React, { useEffect, useState } from 'react';
import {
    Alert, Button, Checkbox, Form, FormGroup, FormHelperText, HelperText, HelperTextItem,
    Modal, ModalBody, ModalFooter, ModalHeader, TextInput,
} from '@patternfly/react-core';

import { run, runJson } from './tapctl.js';
import { when } from './format.js';
import { systemUsers } from './users.js';

const _ = cockpit.gettext;

export const IssueDialog = ({ onClose }) => {
    const [users, setUsers] = useState([]);
    const [policy, setPolicy] = useState(null);
    const [policyError, setPolicyError] = useState(null);
    const [user, setUser] = useState('');
    const [lifetime, setLifetime] = useState('');
    const [start, setStart] = useState('');
    const [oneTime, setOneTime] = useState(false);
    const [error, setError] = useState(null);
    const [busy, setBusy] = useState(false);
    const [issued, setIssued] = useState(null);
    const [copied, setCopied] = useState(null);

    useEffect(() => {
        systemUsers().then(setUsers);
        runJson(['policy', 'check'])
                .then(p => { setPolicy(p); setOneTime(p.pass.one_time || p.pass.require_one_time) })
                .catch(ex => setPolicyError(ex.message));
    }, []);

    const close = () => {
        setIssued(null); // forget the pass before the dialog goes
        onClose();
    };

    const issue = () => {
        // `--opt=value` and `--` keep every value one argument that can never pass for an option
        const args = ['issue', '--json'];
        if (lifetime.trim() !== '')
            args.push('--lifetime=' + lifetime.trim());
        if (start.trim() !== '')
            args.push('--start=' + start.trim());
        if (oneTime)
            args.push('--one-time');
        args.push('--', user);
        setBusy(true);
        setError(null);
        run(args, { admin: true })
                .then(out => { setIssued(JSON.parse(out)); setBusy(false) })
                .catch(ex => { setError(ex.message); setBusy(false) });
    };

    const copy = () => {
        navigator.clipboard.writeText(issued.pass)
                .then(() => setCopied(_('Copied')))
                .catch(() => setCopied(_('Could not copy: select the pass and copy it by hand')));
    };

    if (issued) {
        const groups = issued.pass.split(/[-\s]+/).filter(g => g !== '');
        return (
            <Modal id="issue-dialog" isOpen variant="medium" onClose={close} aria-labelledby="issue-result-title">
                <ModalHeader labelId="issue-result-title" title={cockpit.format(_('Temporary Access Pass for $0'), issued.user)} />
                <ModalBody>
                    <div id="issued-pass" className="tap-pass" aria-label={_('the pass')}>
                        {groups.map((g, i) => <span key={i} className="tap-pass-group">{g}</span>)}
                    </div>
                    <p id="issued-until">
                        {cockpit.format(_('Valid from $0 until $1'), when(issued.start), when(issued.expires))}
                        {issued.one_time ? ' ' + _('for one sign-in.') : '.'}
                    </p>
                    <Alert variant="info" isInline isPlain
                           title={cockpit.format(_('Give it to $0 now: it is shown only this once.'), issued.user)} />
                </ModalBody>
                <ModalFooter>
                    <Button id="issued-copy" variant="secondary" onClick={copy}>{_('Copy')}</Button>
                    {copied && <span className="tap-copied">{copied}</span>}
                    <Button id="issued-close" variant="primary" onClick={close}>{_('Close')}</Button>
                </ModalFooter>
            </Modal>
        );
    }

    const bounds = policy &&
        cockpit.format(_('Between $0 and $1; empty: $2.'),
                       policy.pass.min_lifetime, policy.pass.max_lifetime, policy.pass.default_lifetime);

    return (
        <Modal id="issue-dialog" isOpen variant="small" onClose={close} aria-labelledby="issue-title">
            <ModalHeader labelId="issue-title" title={_('Issue a Temporary Access Pass')} />
            <ModalBody>
                <Form id="issue-form" onSubmit={e => { e.preventDefault(); issue() }}>
                    <FormGroup label={_('User')} fieldId="issue-user" isRequired>
                        <TextInput id="issue-user" value={user} list="issue-users" autoComplete="off"
                                   onChange={(_e, v) => setUser(v)} />
                        <datalist id="issue-users">
                            {users.map(u => <option key={u} value={u} />)}
                        </datalist>
                        <FormHelperText><HelperText><HelperTextItem>
                            {_('A new pass replaces the user\'s old one.')}
                        </HelperTextItem></HelperText></FormHelperText>
                    </FormGroup>
                    <FormGroup label={_('Lifetime')} fieldId="issue-lifetime">
                        <TextInput id="issue-lifetime" value={lifetime} placeholder={policy ? policy.pass.default_lifetime : '1h'}
                                   onChange={(_e, v) => setLifetime(v)} />
                        <FormHelperText><HelperText><HelperTextItem id="issue-bounds">
                            {bounds || _('e.g. 30m, 1h30m, 2d')}
                        </HelperTextItem></HelperText></FormHelperText>
                    </FormGroup>
                    <FormGroup label={_('Start')} fieldId="issue-start">
                        <TextInput id="issue-start" value={start} placeholder={_('now')}
                                   onChange={(_e, v) => setStart(v)} />
                        <FormHelperText><HelperText><HelperTextItem>
                            {_('Empty: now. Or +30m, or a time such as 2026-11-28T16:00:00Z.')}
                        </HelperTextItem></HelperText></FormHelperText>
                    </FormGroup>
                    <Checkbox id="issue-one-time" label={_('One-time: good for one sign-in')}
                              isChecked={oneTime} isDisabled={!!(policy && policy.pass.require_one_time)}
                              onChange={(_e, v) => setOneTime(v)} />
                    {policyError && <Alert variant="warning" isInline title={policyError} />}
                    {error && <Alert id="issue-error" variant="danger" isInline title={error} />}
                </Form>
            </ModalBody>
            <ModalFooter>
                <Button id="issue-submit" variant="primary" isLoading={busy} isDisabled={busy || user === ''} onClick={issue}>
                    {_('Issue')}
                </Button>
                <Button variant="link" onClick={close}>{_('Cancel')}</Button>
            </ModalFooter>
        </Modal>
    );
};
