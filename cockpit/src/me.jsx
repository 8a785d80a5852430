/* global cockpit */
// "My security info", for every user as themselves (no superuser): their
// pass, enrollment window, keys, recent sign-ins and how to enroll a key.
import React, { useCallback, useEffect, useState } from 'react';
import {
    Alert, Card, CardBody, CardTitle, ClipboardCopy, DescriptionList, DescriptionListDescription,
    DescriptionListGroup, DescriptionListTerm, Label, Stack, StackItem,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';

import { run, runJson } from './tapctl.js';
import { millis, reason, when } from './format.js';
import { KeyTables } from './keys.jsx';

const _ = cockpit.gettext;
const SIGNINS = 10;

function sshHost() {
    return cockpit.transport.host && cockpit.transport.host !== 'localhost'
        ? cockpit.transport.host
        : window.location.hostname;
}

const Pass = ({ pass }) => {
    if (!pass)
        return <p id="me-pass">{_('You have no Temporary Access Pass.')}</p>;
    return (
        <DescriptionList id="me-pass" isHorizontal data-reason={pass.reason}>
            <DescriptionListGroup>
                <DescriptionListTerm>{_('State')}</DescriptionListTerm>
                <DescriptionListDescription id="me-pass-state">
                    <Label color={pass.usable ? 'green' : 'grey'}>{pass.usable ? _('usable') : _('not usable')}</Label>
                    {' '}{reason(pass.reason)}
                </DescriptionListDescription>
            </DescriptionListGroup>
            <DescriptionListGroup>
                <DescriptionListTerm>{_('Valid')}</DescriptionListTerm>
                <DescriptionListDescription id="me-pass-valid">
                    {cockpit.format(_('$0 until $1'), when(pass.start), when(pass.expires))}
                </DescriptionListDescription>
            </DescriptionListGroup>
            <DescriptionListGroup>
                <DescriptionListTerm>{_('One-time')}</DescriptionListTerm>
                <DescriptionListDescription id="me-pass-one-time">
                    {pass.one_time
                        ? (pass.used_at ? cockpit.format(_('yes, used $0'), when(pass.used_at)) : _('yes, not used yet'))
                        : _('no')}
                </DescriptionListDescription>
            </DescriptionListGroup>
            <DescriptionListGroup>
                <DescriptionListTerm>{_('Wrong tries')}</DescriptionListTerm>
                <DescriptionListDescription>{pass.failures} / {pass.max_failures}</DescriptionListDescription>
            </DescriptionListGroup>
        </DescriptionList>
    );
};

const Enroll = ({ me, windowOpen, windowUntil, hasKeys, policy }) => {
    const label = '"' + _('my key') + '"';
    const usb = 'tapctl enroll --label ' + label;
    const ssh = 'tapctl ssh-enroll ' + me + '@' + sshHost();
    const sshOn = policy && policy.ssh.enabled;
    return (
        <Stack hasGutter id="me-enroll">
            <StackItem>
                {windowOpen
                    ? cockpit.format(_('Your enrollment window is open until $0. Enroll a key now:'), when(windowUntil))
                    : hasKeys
                        ? _('Your enrollment window is closed. To add a key, run the command with a key you already have plugged in: it asks you to touch it first.')
                        : cockpit.format(_('Your enrollment window is closed. Ask an administrator for a Temporary Access Pass, sign in with it, then within $0 run:'),
                                         policy ? policy.pass.enroll_window : _('the window'))}
            </StackItem>
            <StackItem>
                <p>{_('A USB security key plugged into this machine, in a terminal here:')}</p>
                <ClipboardCopy id="me-enroll-usb" isReadOnly hoverTip={_('Copy')} clickTip={_('Copied')}>{usb}</ClipboardCopy>
            </StackItem>
            {sshOn &&
                <StackItem>
                    <p>{_('An SSH security key, on your own computer (with tapctl installed there):')}</p>
                    <ClipboardCopy id="me-enroll-ssh" isReadOnly hoverTip={_('Copy')} clickTip={_('Copied')}>{ssh}</ClipboardCopy>
                </StackItem>}
        </Stack>
    );
};

export const MySecurityInfo = () => {
    const [user, setUser] = useState(null);
    const [status, setStatus] = useState(null);
    const [signins, setSignins] = useState(null);
    const [policy, setPolicy] = useState(null);
    const [error, setError] = useState(null);

    const load = useCallback(() => {
        Promise.resolve(cockpit.user()).then(u => {
            setUser(u.name);
            return Promise.all([
                runJson(['status']),
                runJson(['audit', '--user=' + u.name, '--limit=200']).catch(() => []),
                runJson(['policy', 'check']).catch(() => null),
            ]);
        })
                .then(([s, audit, p]) => {
                    setStatus(s);
                    setSignins(audit.filter(r => r.event.startsWith('signin')).reverse().slice(0, SIGNINS));
                    setPolicy(p);
                    setError(null);
                })
                .catch(ex => setError(ex.message));
    }, []);
    useEffect(load, [load]);

    if (error)
        return <Alert id="me-error" variant="danger" isInline title={error} />;
    if (!status)
        return null;

    const until = status.enroll_window_until;
    const windowOpen = !!until && millis(until) > Date.now();
    const hasKeys = status.keys.length > 0;
    const remove = (kind, id) => run([kind, 'remove', '--', id]).then(load);

    return (
        <Stack hasGutter>
            <StackItem>
                <Card id="me-pass-card">
                    <CardTitle>{cockpit.format(_('Temporary Access Pass of $0'), user)}</CardTitle>
                    <CardBody><Pass pass={status.pass} /></CardBody>
                </Card>
            </StackItem>
            <StackItem>
                <Card id="me-window-card">
                    <CardTitle>{_('Enrollment window')}</CardTitle>
                    <CardBody id="me-window">
                        {windowOpen
                            ? cockpit.format(_('Open until $0.'), when(until))
                            : _('Closed.')}
                    </CardBody>
                </Card>
            </StackItem>
            <StackItem>
                <Card id="me-keys-card">
                    <CardTitle>{_('Your keys')}</CardTitle>
                    <CardBody>
                        <KeyTables idPrefix="me" keys={status.keys} sshKeys={status.ssh_keys} onRemove={remove}
                                   canRemove={windowOpen || status.keys.length > 0}
                                   why={_('You can remove a key while your enrollment window is open, or after touching another of your security keys.')} />
                    </CardBody>
                </Card>
            </StackItem>
            <StackItem>
                <Card id="me-enroll-card">
                    <CardTitle>{_('Enroll a key')}</CardTitle>
                    <CardBody>
                        <Enroll me={user} windowOpen={windowOpen} windowUntil={until} hasKeys={hasKeys} policy={policy} />
                    </CardBody>
                </Card>
            </StackItem>
            <StackItem>
                <Card id="me-signins-card">
                    <CardTitle>{_('Recent sign-ins')}</CardTitle>
                    <CardBody>
                        {signins && signins.length === 0 && <p>{_('No sign-ins with a pass or key yet.')}</p>}
                        {signins && signins.length > 0 &&
                            <Table id="me-signins" aria-label={_('Recent sign-ins')} variant="compact">
                                <Thead><Tr><Th>{_('Time')}</Th><Th>{_('Event')}</Th><Th>{_('Service')}</Th><Th>{_('From')}</Th><Th>{_('Detail')}</Th></Tr></Thead>
                                <Tbody>
                                    {signins.map(r => (
                                        <Tr key={r.seq}>
                                            <Td>{when(r.time)}</Td><Td>{r.event}</Td><Td>{r.service}</Td>
                                            <Td>{r.rhost}</Td><Td>{r.detail}</Td>
                                        </Tr>
                                    ))}
                                </Tbody>
                            </Table>}
                    </CardBody>
                </Card>
            </StackItem>
        </Stack>
    );
};
