/* global cockpit */
// The system's user names, for completion in the issue dialog: read from
// /etc/passwd (world-readable) through cockpit.file. Only a hint: tapctl
// and tapd decide whether a name is a user.
export function systemUsers() {
    return new Promise((resolve, reject) => cockpit.file('/etc/passwd').read().then(resolve, reject))
            .then(text => (text || '').split('\n')
                    .map(line => line.split(':'))
                    .filter(f => f.length >= 7 && (Number(f[2]) >= 1000 || f[2] === '0') && Number(f[2]) !== 65534)
                    .map(f => f[0])
                    .sort())
            .catch(() => []);
}
