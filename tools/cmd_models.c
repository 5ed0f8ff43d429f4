/* scalequest models: the registry of known installable models (models.h) — name, file,
 * size, where it is installed or how to install it; --verify checks the sha256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/models.h"

static int cmd_models(int argc, char **argv) {
    int verify = 0;
    sq_opt opts[] = {{"verify", SQ_OPT_FLAG, &verify, NULL, "check each installed file's sha256 (reads it all)"}};
    int npos, rc = sq_cli_parse(argc, argv, "[--verify]", opts, SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    int n, bad = 0;
    const sq_known_model *k = sq_models_list(&n);
    for (int i = 0; i < n; i++) {
        sq_err e;
        char *path = NULL;
        int r = sq_models_resolve(k[i].name, &path, &e);
        printf("%s\t%s\t%lld bytes\t%s\n", k[i].name, k[i].file, (long long)k[i].size, k[i].about);
        if (r == 1) {
            printf("  installed: %s\n", path);
            if (verify) {
                char hex[65];
                if (sq_sha256_file(path, hex, &e)) {
                    printf("  sha256: %s\n", e.msg);
                    bad = 1;
                } else {
                    int ok = !strcmp(hex, k[i].sha256);
                    printf("  sha256 %s: %s\n", hex, ok ? "ok" : "MISMATCH");
                    bad |= !ok;
                }
            }
        } else {
            printf("  %s\n", r < 0 ? e.msg : "not installed");
        }
        free(path);
    }
    return bad ? SQ_EXIT_FAIL : SQ_EXIT_OK;
}

SQ_COMMAND(models, "models", "list the known installable models (--verify: check their sha256)", cmd_models);
