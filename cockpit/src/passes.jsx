/* global cockpit */
// Admin: every pass (tapctl list --json), sortable and filterable, with revoke.
import React, { useCallback, useEffect, useMemo, useState } from 'react';
import {
    Alert, Button, EmptyState, EmptyStateBody, FormSelect, FormSelectOption, Label,
    Modal, ModalBody, ModalFooter, ModalHeader, SearchInput,
    Toolbar, ToolbarContent, ToolbarItem,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';

import { runJson, run } from './tapctl.js';
import { millis, reason, when } from './format.js';
import { IssueDialog } from './issue.jsx';

const _ = cockpit.gettext;

const COLUMNS = [
    { title: _('User'), key: p => p.user },
    { title: _('Usable'), key: p => (p.usable ? 0 : 1) },
    { title: _('Valid from'), key: p => millis(p.start) },
    { title: _('Valid until'), key: p => millis(p.expires) },
    { title: _('One-time'), key: p => (p.one_time ? 0 : 1) },
    { title: _('Failures'), key: p => p.failures },
];

export const Passes = ({ onShowKeys }) => {
    const [passes, setPasses] = useState(null);
    const [error, setError] = useState(null);
    const [filter, setFilter] = useState('');
    const [state, setState] = useState('all');
    const [sortBy, setSortBy] = useState({ index: 0, direction: 'asc' });
    const [issuing, setIssuing] = useState(false);
    const [revoking, setRevoking] = useState(null);

    const load = useCallback(() => {
        runJson(['list'], { admin: true })
                .then(list => { setPasses(list); setError(null) })
                .catch(ex => setError(ex.message));
    }, []);
    useEffect(load, [load]);

    const rows = useMemo(() => {
        const needle = filter.trim().toLowerCase();
        const shown = (passes || []).filter(p =>
            (needle === '' || p.user.toLowerCase().includes(needle)) &&
            (state === 'all' || (state === 'usable') === p.usable));
        const key = COLUMNS[sortBy.index].key;
        const sign = sortBy.direction === 'asc' ? 1 : -1;
        return shown.slice().sort((a, b) => {
            const x = key(a); const y = key(b);
            return (x < y ? -1 : x > y ? 1 : 0) * sign;
        });
    }, [passes, filter, state, sortBy]);

    const sort = index => ({
        sortBy,
        columnIndex: index,
        onSort: (_event, i, direction) => setSortBy({ index: i, direction }),
    });

    return (
        <>
            <Toolbar id="passes-toolbar">
                <ToolbarContent>
                    <ToolbarItem>
                        <SearchInput id="passes-filter" placeholder={_('Filter by user')} value={filter}
                                     onChange={(_e, v) => setFilter(v)} onClear={() => setFilter('')} />
                    </ToolbarItem>
                    <ToolbarItem>
                        <FormSelect id="passes-state" aria-label={_('Usable')} value={state}
                                    onChange={(_e, v) => setState(v)}>
                            <FormSelectOption value="all" label={_('All passes')} />
                            <FormSelectOption value="usable" label={_('Usable')} />
                            <FormSelectOption value="unusable" label={_('Not usable')} />
                        </FormSelect>
                    </ToolbarItem>
                    <ToolbarItem>
                        <Button id="issue-open" variant="primary" onClick={() => setIssuing(true)}>
                            {_('Issue a pass')}
                        </Button>
                    </ToolbarItem>
                    <ToolbarItem>
                        <Button variant="secondary" onClick={load}>{_('Refresh')}</Button>
                    </ToolbarItem>
                </ToolbarContent>
            </Toolbar>
            {error && <Alert id="passes-error" variant="danger" isInline title={error} />}
            {passes && rows.length === 0 &&
                <EmptyState titleText={_('No passes')} headingLevel="h3">
                    <EmptyStateBody>{passes.length === 0 ? _('No pass has been issued.') : _('No pass matches the filter.')}</EmptyStateBody>
                </EmptyState>}
            {rows.length > 0 &&
                <Table id="passes-table" aria-label={_('Temporary Access Passes')} variant="compact">
                    <Thead>
                        <Tr>
                            {COLUMNS.map((c, i) => <Th key={c.title} sort={sort(i)}>{c.title}</Th>)}
                            <Th screenReaderText={_('Actions')} />
                        </Tr>
                    </Thead>
                    <Tbody>
                        {rows.map(p => (
                            <Tr key={p.user} data-user={p.user}>
                                <Td dataLabel={COLUMNS[0].title}>{p.user}</Td>
                                <Td dataLabel={COLUMNS[1].title} data-reason={p.reason}>
                                    <Label color={p.usable ? 'green' : 'grey'}>{p.usable ? _('usable') : _('not usable')}</Label>
                                    {' '}{p.usable ? '' : reason(p.reason)}
                                </Td>
                                <Td dataLabel={COLUMNS[2].title}>{when(p.start)}</Td>
                                <Td dataLabel={COLUMNS[3].title}>{when(p.expires)}</Td>
                                <Td dataLabel={COLUMNS[4].title}>{p.one_time ? _('yes') : _('no')}</Td>
                                <Td dataLabel={COLUMNS[5].title}>{p.failures} / {p.max_failures}</Td>
                                <Td isActionCell>
                                    <Button variant="link" onClick={() => onShowKeys(p.user)}>{_('Keys')}</Button>
                                    <Button variant="secondary" isDanger className="revoke"
                                            isDisabled={p.reason === 'Revoked'}
                                            onClick={() => setRevoking(p.user)}>{_('Revoke')}</Button>
                                </Td>
                            </Tr>
                        ))}
                    </Tbody>
                </Table>}
            {issuing && <IssueDialog onClose={() => { setIssuing(false); load() }} />}
            {revoking !== null &&
                <RevokeDialog user={revoking} onClose={() => { setRevoking(null); load() }} />}
        </>
    );
};

const RevokeDialog = ({ user, onClose }) => {
    const [error, setError] = useState(null);
    const [busy, setBusy] = useState(false);
    const revoke = () => {
        setBusy(true);
        run(['revoke', '--', user], { admin: true })
                .then(onClose)
                .catch(ex => { setError(ex.message); setBusy(false) });
    };
    return (
        <Modal id="revoke-dialog" isOpen variant="small" onClose={onClose}>
            <ModalHeader title={cockpit.format(_('Revoke the pass of $0?'), user)} titleIconVariant="warning" />
            <ModalBody>
                {_('The pass stops working at once. The user keeps their security keys.')}
                {error && <Alert variant="danger" isInline title={error} />}
            </ModalBody>
            <ModalFooter>
                <Button id="revoke-confirm" variant="danger" isLoading={busy} isDisabled={busy} onClick={revoke}>{_('Revoke')}</Button>
                <Button variant="link" onClick={onClose}>{_('Cancel')}</Button>
            </ModalFooter>
        </Modal>
    );
};
