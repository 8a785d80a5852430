/* global cockpit */
const _ = cockpit.gettext;

// tapctl's JSON has RFC 3339 strings for passes and keys and Unix seconds for
// audit records; both are shown in the browser's time zone.
export function when(value) {
    if (value === null || value === undefined || value === '')
        return _('never');
    const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
    if (isNaN(d.getTime()))
        return String(value);
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function millis(value) {
    if (value === null || value === undefined || value === '')
        return 0;
    return typeof value === 'number' ? value * 1000 : Date.parse(value);
}

const REASONS = {
    EnabledByPolicy: _('usable'),
    DisabledByPolicy: _('pam_tap is disabled, or the user is out of its scope'),
    Expired: _('expired'),
    NotYetValid: _('not valid yet'),
    OneTimeUsed: _('used (one-time)'),
    Locked: _('locked after too many wrong tries'),
    Revoked: _('revoked'),
};

export function reason(code) {
    return REASONS[code] || code;
}
