/* scalequest version: the version and the libraries this build uses. */
#include <curl/curl.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>

#include "cli.h"

static int cmd_version(int argc, char **argv) {
    int npos;
    int rc = sq_cli_parse(argc, argv, "", NULL, 0, NULL, 0, &npos);
    if (rc >= 0) return rc;
    const dnnl_version_t *v = dnnl_version();
    printf("scalequest %s\n", SQ_VERSION);
    printf("oneDNN %d.%d.%d, %s\n", v->major, v->minor, v->patch, curl_version());
    return SQ_EXIT_OK;
}

SQ_COMMAND(version, "version", "print the version and the libraries in use", cmd_version);
