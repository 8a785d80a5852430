/* global cockpit */
// The page: "My security info" for everyone; passes, keys and the audit log
// when the Cockpit session has administrative access (Cockpit's superuser).
import React, { useEffect, useState } from 'react';
import { Page, PageSection, Tab, Tabs, TabTitleText, Title } from '@patternfly/react-core';

import { Passes } from './passes.jsx';
import { UserKeys } from './keys.jsx';
import { AuditLog } from './audit.jsx';
import { MySecurityInfo } from './me.jsx';

const _ = cockpit.gettext;

// "root" once the superuser bridge runs; "none" (limited access) or "init".
function useAdmin() {
    const [admin, setAdmin] = useState(false);
    useEffect(() => {
        const proxy = cockpit.dbus(null, { bus: 'internal' }).proxy('cockpit.Superuser', '/superuser');
        const update = () => setAdmin(proxy.valid && proxy.Current !== 'none' && proxy.Current !== 'init');
        proxy.addEventListener('changed', update);
        proxy.wait(update);
        return () => proxy.removeEventListener('changed', update);
    }, []);
    return admin;
}

export const Application = () => {
    const admin = useAdmin();
    const [tab, setTab] = useState('me');
    const [keysUser, setKeysUser] = useState('');
    const active = admin ? tab : 'me';

    const showKeys = user => { setKeysUser(user); setTab('keys') };

    return (
        <Page>
            <PageSection>
                <Title headingLevel="h1">{_('Access passes and keys')}</Title>
            </PageSection>
            <PageSection>
                <Tabs id="tap-tabs" activeKey={active} onSelect={(_e, k) => setTab(k)} mountOnEnter unmountOnExit>
                    <Tab eventKey="me" id="tab-me" title={<TabTitleText>{_('My security info')}</TabTitleText>}>
                        <MySecurityInfo />
                    </Tab>
                    {admin &&
                        <Tab eventKey="passes" id="tab-passes" title={<TabTitleText>{_('Passes')}</TabTitleText>}>
                            <Passes onShowKeys={showKeys} />
                        </Tab>}
                    {admin &&
                        <Tab eventKey="keys" id="tab-keys" title={<TabTitleText>{_('Keys')}</TabTitleText>}>
                            <UserKeys key={keysUser} user={keysUser} />
                        </Tab>}
                    {admin &&
                        <Tab eventKey="audit" id="tab-audit" title={<TabTitleText>{_('Audit log')}</TabTitleText>}>
                            <AuditLog />
                        </Tab>}
                </Tabs>
            </PageSection>
        </Page>
    );
};
