/*
 * pamdriver: a tiny PAM application for the pam_tap end-to-end tests.
 *
 * pam_start(service, user) -> pam_authenticate (-> pam_setcred), with a
 * scripted conversation.  Prints one JSON object on stdout:
 *   {"rc": "PAM_SUCCESS", "rc_num": 0, "messages": [{"style": ..., "msg": ...}],
 *    "conv_calls": N, "answers_used": N, "exhausted": false,
 *    "fail_delay_usec": N|null, "env": {...}, "setcred": "PAM_SUCCESS"|null}
 * rc is the exact return code NAME of pam_authenticate (pam_strerror is
 * ambiguous).  Exit status: 0 when pam_authenticate ran (whatever it
 * returned), 2 on bad usage, 3 when pam_start failed.
 *
 * Options:
 *   --service NAME       PAM service (default "pamtap-e2e")
 *   --user NAME          PAM_USER
 *   --confdir DIR        use pam_start_confdir(DIR) instead of /etc/pam.d
 *   --answer TEXT        answer for the next ECHO_OFF/ECHO_ON prompt (repeatable)
 *   --answer-hex HEX     same, given as hex bytes (non-UTF-8, control chars)
 *   --conv MODE          ok (default) | fail (return PAM_CONV_ERR) |
 *                        null (return PAM_SUCCESS with *resp == NULL) |
 *                        nullresp (return responses whose strings are NULL)
 *   --silent             pass PAM_SILENT to pam_authenticate
 *   --authtok TEXT       put E2E_AUTHTOK=TEXT in the PAM environment; the
 *                        helper module pam_e2e.so authtok_from_env=E2E_AUTHTOK
 *                        copies it to PAM_AUTHTOK (an application cannot set
 *                        PAM_AUTHTOK itself)
 *   --rhost H, --tty T, --ruser U   set PAM_RHOST / PAM_TTY / PAM_RUSER
 *   --setcred            call pam_setcred(PAM_ESTABLISH_CRED) after success
 *   --session            call pam_open_session after success ("session" in the JSON)
 *   --wait-file PATH     after pam_start, wait until PATH exists, then go
 *                        (lines many processes up for the concurrency test)
 *
 * With the ok conversation, a prompt that finds no answer left makes the
 * conversation return PAM_CONV_ERR ("exhausted": true).  Every message is
 * recorded, answered or not.  The application installs a PAM_FAIL_DELAY
 * function, so a failing module's delay is recorded, not slept.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ANSWERS 64
#define MAX_MSGS 256

static const char *answers[MAX_ANSWERS];
static int n_answers, next_answer;
static enum { CONV_OK, CONV_FAIL, CONV_NULL, CONV_NULLRESP } conv_mode = CONV_OK;
static int conv_calls, exhausted;
static int msg_style[MAX_MSGS];
static char *msg_text[MAX_MSGS];
static int n_msgs;
static long long fail_delay_usec = -1;

static const char *rc_name(int rc)
{
    switch (rc) {
#define C(x) case x: return #x;
        C(PAM_SUCCESS) C(PAM_OPEN_ERR) C(PAM_SYMBOL_ERR) C(PAM_SERVICE_ERR)
        C(PAM_SYSTEM_ERR) C(PAM_BUF_ERR) C(PAM_PERM_DENIED) C(PAM_AUTH_ERR)
        C(PAM_CRED_INSUFFICIENT) C(PAM_AUTHINFO_UNAVAIL) C(PAM_USER_UNKNOWN)
        C(PAM_MAXTRIES) C(PAM_NEW_AUTHTOK_REQD) C(PAM_ACCT_EXPIRED)
        C(PAM_SESSION_ERR) C(PAM_CRED_UNAVAIL) C(PAM_CRED_EXPIRED) C(PAM_CRED_ERR)
        C(PAM_NO_MODULE_DATA) C(PAM_CONV_ERR) C(PAM_AUTHTOK_ERR)
        C(PAM_AUTHTOK_RECOVERY_ERR) C(PAM_AUTHTOK_LOCK_BUSY)
        C(PAM_AUTHTOK_DISABLE_AGING) C(PAM_TRY_AGAIN) C(PAM_IGNORE) C(PAM_ABORT)
        C(PAM_AUTHTOK_EXPIRED) C(PAM_MODULE_UNKNOWN) C(PAM_BAD_ITEM)
        C(PAM_CONV_AGAIN) C(PAM_INCOMPLETE)
#undef C
    }
    return "PAM_UNKNOWN_CODE";
}

static const char *style_name(int s)
{
    switch (s) {
    case PAM_PROMPT_ECHO_OFF: return "PAM_PROMPT_ECHO_OFF";
    case PAM_PROMPT_ECHO_ON: return "PAM_PROMPT_ECHO_ON";
    case PAM_ERROR_MSG: return "PAM_ERROR_MSG";
    case PAM_TEXT_INFO: return "PAM_TEXT_INFO";
    }
    return "UNKNOWN_STYLE";
}

static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p); /* bytes >= 0x80 pass through; the harness decodes leniently */
    }
    putchar('"');
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
    (void)appdata;
    conv_calls++;
    for (int i = 0; i < n; i++) {
        if (n_msgs < MAX_MSGS) {
            msg_style[n_msgs] = msg[i]->msg_style;
            msg_text[n_msgs] = strdup(msg[i]->msg ? msg[i]->msg : "");
            n_msgs++;
        }
    }
    if (conv_mode == CONV_FAIL)
        return PAM_CONV_ERR;
    if (conv_mode == CONV_NULL) {
        *resp = NULL;
        return PAM_SUCCESS;
    }
    struct pam_response *r = calloc((size_t)n, sizeof(*r));
    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        int style = msg[i]->msg_style;
        if (style != PAM_PROMPT_ECHO_OFF && style != PAM_PROMPT_ECHO_ON)
            continue;
        if (conv_mode == CONV_NULLRESP)
            continue;
        if (next_answer >= n_answers) {
            exhausted = 1;
            for (int j = 0; j < n; j++)
                free(r[j].resp);
            free(r);
            return PAM_CONV_ERR;
        }
        r[i].resp = strdup(answers[next_answer++]);
    }
    *resp = r;
    return PAM_SUCCESS;
}

static void fail_delay(int status, unsigned int usec, void *appdata)
{
    (void)status;
    (void)appdata;
    fail_delay_usec = usec;
}

static char *hex_decode(const char *h)
{
    size_t len = strlen(h);
    if (len % 2)
        return NULL;
    char *out = malloc(len / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned int b;
        if (sscanf(h + 2 * i, "%2x", &b) != 1)
            return NULL;
        out[i] = (char)b;
    }
    out[len / 2] = 0;
    return out;
}

static void usage(void)
{
    fprintf(stderr, "usage: pamdriver --user U [--service S] [--confdir D] [--answer A]... "
                    "[--answer-hex H]... [--conv ok|fail|null|nullresp] [--silent] "
                    "[--authtok T] [--rhost H] [--tty T] [--ruser U] [--setcred] [--session] [--wait-file P]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *service = "pamtap-e2e", *user = NULL, *confdir = NULL, *authtok = NULL;
    const char *rhost = NULL, *tty = NULL, *ruser = NULL, *wait_file = NULL;
    int flags = 0, do_setcred = 0, do_session = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define ARG() (i + 1 < argc ? argv[++i] : (usage(), (char *)NULL))
        if (!strcmp(a, "--service")) service = ARG();
        else if (!strcmp(a, "--user")) user = ARG();
        else if (!strcmp(a, "--confdir")) confdir = ARG();
        else if (!strcmp(a, "--answer") || !strcmp(a, "--answer-hex")) {
            const char *v = ARG();
            if (n_answers >= MAX_ANSWERS) usage();
            answers[n_answers] = !strcmp(a, "--answer") ? v : hex_decode(v);
            if (!answers[n_answers]) usage();
            n_answers++;
        } else if (!strcmp(a, "--conv")) {
            const char *m = ARG();
            if (!strcmp(m, "ok")) conv_mode = CONV_OK;
            else if (!strcmp(m, "fail")) conv_mode = CONV_FAIL;
            else if (!strcmp(m, "null")) conv_mode = CONV_NULL;
            else if (!strcmp(m, "nullresp")) conv_mode = CONV_NULLRESP;
            else usage();
        } else if (!strcmp(a, "--silent")) flags |= PAM_SILENT;
        else if (!strcmp(a, "--authtok")) authtok = ARG();
        else if (!strcmp(a, "--rhost")) rhost = ARG();
        else if (!strcmp(a, "--tty")) tty = ARG();
        else if (!strcmp(a, "--ruser")) ruser = ARG();
        else if (!strcmp(a, "--setcred")) do_setcred = 1;
        else if (!strcmp(a, "--session")) do_session = 1;
        else if (!strcmp(a, "--wait-file")) wait_file = ARG();
        else usage();
#undef ARG
    }

    struct pam_conv pc = {conv, NULL};
    pam_handle_t *pamh = NULL;
    int rc = confdir ? pam_start_confdir(service, user, &pc, confdir, &pamh)
                     : pam_start(service, user, &pc, &pamh);
    if (rc != PAM_SUCCESS) {
        printf("{\"rc\": \"pam_start:%s\", \"rc_num\": %d}\n", rc_name(rc), rc);
        return 3;
    }
    pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)fail_delay);
    if (rhost) pam_set_item(pamh, PAM_RHOST, rhost);
    if (tty) pam_set_item(pamh, PAM_TTY, tty);
    if (ruser) pam_set_item(pamh, PAM_RUSER, ruser);
    if (authtok) {
        char *kv;
        if (asprintf(&kv, "E2E_AUTHTOK=%s", authtok) < 0 || pam_putenv(pamh, kv) != PAM_SUCCESS) {
            fprintf(stderr, "pamdriver: cannot set E2E_AUTHTOK\n");
            return 3;
        }
    }
    if (wait_file) {
        struct timespec ts = {0, 1000000};
        for (int waited = 0; access(wait_file, F_OK) != 0; waited++) {
            if (waited > 60000) {
                fprintf(stderr, "pamdriver: timed out waiting for %s\n", wait_file);
                return 3;
            }
            nanosleep(&ts, NULL);
        }
    }

    rc = pam_authenticate(pamh, flags);
    int cred_rc = -1;
    if (do_setcred && rc == PAM_SUCCESS)
        cred_rc = pam_setcred(pamh, PAM_ESTABLISH_CRED);
    int session_rc = -1;
    if (do_session && rc == PAM_SUCCESS)
        session_rc = pam_open_session(pamh, 0);

    printf("{\"rc\": \"%s\", \"rc_num\": %d, \"messages\": [", rc_name(rc), rc);
    for (int i = 0; i < n_msgs; i++) {
        printf("%s{\"style\": \"%s\", \"msg\": ", i ? ", " : "", style_name(msg_style[i]));
        json_str(msg_text[i]);
        putchar('}');
    }
    printf("], \"conv_calls\": %d, \"answers_used\": %d, \"exhausted\": %s, ", conv_calls,
           next_answer, exhausted ? "true" : "false");
    if (fail_delay_usec >= 0)
        printf("\"fail_delay_usec\": %lld, ", fail_delay_usec);
    else
        printf("\"fail_delay_usec\": null, ");
    printf("\"env\": {");
    char **env = pam_getenvlist(pamh);
    int first = 1;
    for (char **e = env; e && *e; e++) {
        char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        *eq = 0;
        if (!first)
            printf(", ");
        first = 0;
        json_str(*e);
        printf(": ");
        json_str(eq + 1);
    }
    printf("}, \"setcred\": ");
    if (cred_rc >= 0)
        printf("\"%s\"", rc_name(cred_rc));
    else
        printf("null");
    printf(", \"session\": ");
    if (session_rc >= 0)
        printf("\"%s\"", rc_name(session_rc));
    else
        printf("null");
    printf("}\n");
    fflush(stdout);
    pam_end(pamh, rc);
    return 0;
}
