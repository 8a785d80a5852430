/*
 * pam_e2e.so: a helper PAM module for the pam_tap end-to-end tests only.
 *
 * Arguments (any order):
 *   authtok_from_env=VAR  copy the PAM environment variable VAR (set by the
 *                         test driver) into PAM_AUTHTOK, then remove VAR —
 *                         stands in for an earlier module such as pam_unix
 *                         so that use_first_pass / try_first_pass can be tested
 *   mark=NAME             put E2E_MARK_NAME=1 into the PAM environment, so the
 *                         driver can tell that the stack reached this line
 *   return=CODE           the code to return (PAM_IGNORE by default), e.g.
 *                         PAM_SUCCESS, PAM_AUTH_ERR, PAM_IGNORE
 *   expect=SECRET         prompt "Password: " (echo off) and return
 *                         PAM_SUCCESS if the answer is SECRET, else
 *                         PAM_AUTH_ERR (a stand-in that lets the harness,
 *                         sshd set-up included, be tested without pam_tap)
 */
#define _GNU_SOURCE
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int code_of(const char *name)
{
#define C(x) if (!strcmp(name, #x)) return x;
    C(PAM_SUCCESS) C(PAM_IGNORE) C(PAM_AUTH_ERR) C(PAM_CRED_INSUFFICIENT)
    C(PAM_AUTHINFO_UNAVAIL) C(PAM_SERVICE_ERR) C(PAM_PERM_DENIED)
    C(PAM_USER_UNKNOWN) C(PAM_CONV_ERR) C(PAM_SYSTEM_ERR)
#undef C
    return PAM_SERVICE_ERR;
}

static int run(pam_handle_t *pamh, int argc, const char **argv)
{
    int ret = PAM_IGNORE;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "authtok_from_env=", 17)) {
            const char *v = pam_getenv(pamh, a + 17);
            if (v) {
                char *copy = strdup(v);
                if (!copy || pam_set_item(pamh, PAM_AUTHTOK, copy) != PAM_SUCCESS)
                    return PAM_SERVICE_ERR;
                free(copy);
                pam_putenv(pamh, a + 17); /* "VAR" without '=' removes it */
            }
        } else if (!strncmp(a, "mark=", 5)) {
            char *kv;
            if (asprintf(&kv, "E2E_MARK_%s=1", a + 5) < 0)
                return PAM_BUF_ERR;
            pam_putenv(pamh, kv);
            free(kv);
        } else if (!strncmp(a, "return=", 7)) {
            ret = code_of(a + 7);
        } else if (!strncmp(a, "expect=", 7)) {
            char *resp = NULL;
            int rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &resp, "Password: ");
            if (rc != PAM_SUCCESS)
                return rc;
            if (!resp)
                return PAM_CONV_ERR;
            ret = strcmp(resp, a + 7) ? PAM_AUTH_ERR : PAM_SUCCESS;
            free(resp);
        }
    }
    return ret;
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)flags;
    return run(pamh, argc, argv);
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh; (void)flags; (void)argc; (void)argv;
    return PAM_SUCCESS;
}
