/* global cockpit */
// Security keys and SSH keys: the tables (shared by the admin view and "My
// security info") and the admin's per-user view.
import React, { useCallback, useEffect, useState } from 'react';
import {
    Alert, Button, Form, FormGroup, TextInput, Title, Toolbar, ToolbarContent, ToolbarItem,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';

import { run, runJson } from './tapctl.js';
import { when } from './format.js';

const _ = cockpit.gettext;

// onRemove(kind, id) -> Promise; canRemove false disables the buttons with `why`.
export const KeyTables = ({ keys, sshKeys, onRemove, canRemove = true, why = null, idPrefix }) => {
    const [error, setError] = useState(null);
    const remove = (kind, id) => {
        setError(null);
        onRemove(kind, id).catch(ex => setError(ex.message));
    };
    const button = (kind, id) => (
        <Button variant="secondary" isDanger size="sm" className="key-remove"
                isDisabled={!canRemove} onClick={() => remove(kind, id)}>{_('Remove')}</Button>
    );
    return (
        <>
            {error && <Alert id={idPrefix + '-keys-error'} variant="danger" isInline title={error} />}
            {!canRemove && why && <p className="tap-why">{why}</p>}
            <Title headingLevel="h3">{_('Security keys')}</Title>
            {keys.length === 0
                ? <p id={idPrefix + '-no-keys'}>{_('No security keys.')}</p>
                : <Table id={idPrefix + '-keys'} aria-label={_('Security keys')} variant="compact">
                    <Thead><Tr><Th>{_('Label')}</Th><Th>{_('ID')}</Th><Th>{_('Model (AAGUID)')}</Th><Th>{_('Created')}</Th><Th>{_('Last used')}</Th><Th screenReaderText={_('Actions')} /></Tr></Thead>
                    <Tbody>
                        {keys.map(k => (
                            <Tr key={k.id}>
                                <Td>{k.label}</Td><Td>{k.id.slice(0, 12)}</Td><Td>{k.model}</Td>
                                <Td>{when(k.created)}</Td><Td>{when(k.last_used)}</Td>
                                <Td isActionCell>{button('keys', k.id)}</Td>
                            </Tr>
                        ))}
                    </Tbody>
                </Table>}
            <Title headingLevel="h3">{_('SSH keys')}</Title>
            {sshKeys.length === 0
                ? <p id={idPrefix + '-no-ssh-keys'}>{_('No SSH keys.')}</p>
                : <Table id={idPrefix + '-ssh-keys'} aria-label={_('SSH keys')} variant="compact">
                    <Thead><Tr><Th>{_('Label')}</Th><Th>{_('Fingerprint')}</Th><Th>{_('Type')}</Th><Th>{_('Created')}</Th><Th>{_('Last used')}</Th><Th screenReaderText={_('Actions')} /></Tr></Thead>
                    <Tbody>
                        {sshKeys.map(k => (
                            <Tr key={k.fingerprint}>
                                <Td>{k.label}</Td><Td>{k.fingerprint}</Td><Td>{k.key_type}</Td>
                                <Td>{when(k.created)}</Td><Td>{when(k.last_used)}</Td>
                                <Td isActionCell>{button('ssh-keys', k.fingerprint)}</Td>
                            </Tr>
                        ))}
                    </Tbody>
                </Table>}
        </>
    );
};

// Admin: one user's keys (tapctl keys USER / ssh-keys USER), with remove.
export const UserKeys = ({ user: initial }) => {
    const [user, setUser] = useState(initial || '');
    const [shown, setShown] = useState(null);
    const [error, setError] = useState(null);

    const load = useCallback(name => {
        setError(null);
        Promise.all([runJson(['keys', '--', name], { admin: true }),
            runJson(['ssh-keys', '--', name], { admin: true })])
                .then(([keys, sshKeys]) => setShown({ user: name, keys, sshKeys }))
                .catch(ex => { setShown(null); setError(ex.message) });
    }, []);
    useEffect(() => { if (initial) load(initial) }, [initial, load]);

    const remove = (kind, id) => run([kind, 'remove', '--', shown.user, id], { admin: true })
            .then(() => load(shown.user));

    return (
        <>
            <Toolbar><ToolbarContent><ToolbarItem>
                <Form isHorizontal onSubmit={e => { e.preventDefault(); load(user) }}>
                    <FormGroup label={_('User')} fieldId="keys-user">
                        <TextInput id="keys-user" value={user} onChange={(_e, v) => setUser(v)} />
                    </FormGroup>
                </Form>
            </ToolbarItem><ToolbarItem>
                <Button id="keys-show" variant="secondary" isDisabled={user === ''} onClick={() => load(user)}>{_('Show keys')}</Button>
            </ToolbarItem></ToolbarContent></Toolbar>
            {error && <Alert id="keys-error" variant="danger" isInline title={error} />}
            {shown &&
                <>
                    <Title headingLevel="h2">{cockpit.format(_('Keys of $0'), shown.user)}</Title>
                    <KeyTables idPrefix="admin" keys={shown.keys} sshKeys={shown.sshKeys} onRemove={remove} />
                </>}
        </>
    );
};
