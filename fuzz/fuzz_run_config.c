/* libFuzzer target: the run config loader (YAML through libyaml, the schema check against the
 * embedded default) and the plan built from whatever it accepts. A config that loads must give
 * a plan; an error must carry a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scalequest/run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sq_run_config c;
    sq_err e = {0};
    if (sq_run_config_parse(&c, "fuzz.yaml", (const char *)data, size, &e)) {
        if (!e.msg[0]) abort();
        return 0;
    }
    sq_run_plan p;
    if (sq_run_plan_build(&p, &c, &e) == 0) {
        for (int i = 0; i < p.nstages; i++)
            for (int k = 0; k < p.stages[i].ncmds; k++)
                if (!p.stages[i].cmds[k].argv[0]) abort();
        sq_run_plan_free(&p);
    } else if (!e.msg[0]) abort();
    sq_run_config_free(&c);
    return 0;
}
