/* global cockpit */
// Every call to tapctl goes through here: an argument array (never a shell
// string) handed to cockpit.spawn, so each field reaches tapctl as exactly one
// argument; tapctl and tapd validate it. Admin calls run with
// superuser "require": without administrative access Cockpit refuses them.

export class TapctlError extends Error {
    constructor(message, exitStatus) {
        super(message);
        this.exitStatus = exitStatus;
    }
}

// tapctl prints one line, "tapctl: MESSAGE", on stderr: that line is shown as is.
function failure(ex) {
    const text = (ex && ex.message ? String(ex.message) : String(ex)).trim();
    if (ex && ex.problem === 'access-denied')
        return new TapctlError(cockpit.gettext('This needs administrative access (turn it on in the top bar).'), null);
    if (ex && ex.problem === 'not-found')
        return new TapctlError(cockpit.gettext('tapctl is not installed on this machine.'), null);
    const lines = text.split('\n').filter(l => l.trim() !== '');
    const tapctlLine = lines.find(l => l.startsWith('tapctl: '));
    return new TapctlError(tapctlLine || lines.join('\n') || cockpit.gettext('tapctl failed'), ex ? ex.exit_status : null);
}

export function run(args, { admin = false } = {}) {
    const options = { err: 'message' };
    if (admin)
        options.superuser = 'require';
    // A native promise: cockpit's own does not turn a throw in a handler into
    // a rejection (it would reach the shell as an uncaught error).
    return new Promise((resolve, reject) => {
        cockpit.spawn(['tapctl', ...args], options).then(resolve, ex => reject(failure(ex)));
    });
}

// --json goes before a `--` (after it, it would be an operand).
export function runJson(args, opts) {
    const end = args.indexOf('--');
    const withJson = end < 0 ? [...args, '--json'] : [...args.slice(0, end), '--json', ...args.slice(end)];
    return run(withJson, opts).then(out => JSON.parse(out));
}
