/* global cockpit */
// Admin: the audit log (tapctl audit --json), newest first, filtered by user
// (tapctl's --user), event and time (here, on what tapctl returned).
import React, { useCallback, useEffect, useMemo, useState } from 'react';
import {
    Alert, Button, FormSelect, FormSelectOption, TextInput, Toolbar, ToolbarContent, ToolbarItem,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';

import { runJson } from './tapctl.js';
import { when } from './format.js';

const _ = cockpit.gettext;
const LIMIT = '1000';

export const AuditLog = () => {
    const [user, setUser] = useState('');
    const [event, setEvent] = useState('');
    const [since, setSince] = useState('');
    const [records, setRecords] = useState(null);
    const [error, setError] = useState(null);

    const load = useCallback(() => {
        const args = ['audit', '--limit=' + LIMIT];
        if (user !== '')
            args.push('--user=' + user);
        runJson(args, { admin: true })
                .then(r => { setRecords(r.slice().reverse()); setError(null) })
                .catch(ex => { setRecords(null); setError(ex.message) });
    }, [user]);
    useEffect(() => { load() }, []); // eslint-disable-line react-hooks/exhaustive-deps

    const events = useMemo(() => [...new Set((records || []).map(r => r.event))].sort(), [records]);
    const shown = useMemo(() => {
        const from = since === '' ? null : new Date(since).getTime() / 1000;
        return (records || []).filter(r => (event === '' || r.event === event) && (from === null || r.time >= from));
    }, [records, event, since]);

    return (
        <>
            <Toolbar id="audit-toolbar"><ToolbarContent>
                <ToolbarItem>
                    <TextInput id="audit-user" aria-label={_('User')} placeholder={_('User')} value={user}
                               onChange={(_e, v) => setUser(v)} onKeyDown={e => { if (e.key === 'Enter') load() }} />
                </ToolbarItem>
                <ToolbarItem>
                    <FormSelect id="audit-event" aria-label={_('Event')} value={event} onChange={(_e, v) => setEvent(v)}>
                        <FormSelectOption value="" label={_('All events')} />
                        {events.map(e => <FormSelectOption key={e} value={e} label={e} />)}
                    </FormSelect>
                </ToolbarItem>
                <ToolbarItem>
                    <TextInput id="audit-since" type="datetime-local" aria-label={_('Since')} value={since}
                               onChange={(_e, v) => setSince(v)} />
                </ToolbarItem>
                <ToolbarItem>
                    <Button id="audit-load" variant="secondary" onClick={load}>{_('Show')}</Button>
                </ToolbarItem>
            </ToolbarContent></Toolbar>
            {error && <Alert id="audit-error" variant="danger" isInline title={error} />}
            {records &&
                <Table id="audit-table" aria-label={_('Audit log')} variant="compact">
                    <Thead><Tr><Th>{_('Time')}</Th><Th>{_('Event')}</Th><Th>{_('User')}</Th><Th>{_('Actor')}</Th><Th>{_('Service')}</Th><Th>{_('From')}</Th><Th>{_('Detail')}</Th></Tr></Thead>
                    <Tbody>
                        {shown.map(r => (
                            <Tr key={r.seq}>
                                <Td>{when(r.time)}</Td><Td>{r.event}</Td><Td>{r.user}</Td><Td>{r.actor}</Td>
                                <Td>{r.service}</Td><Td>{r.rhost}</Td><Td>{r.detail}</Td>
                            </Tr>
                        ))}
                    </Tbody>
                </Table>}
        </>
    );
};
