/* scalequest world: write N tiny-world problems as JSONL. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/train.h"
#include "scalequest/world.h"

static int cmd_world(int argc, char **argv) {
    const char *out = NULL, *ops = NULL, *format = "jsonl", *tmpl = "Question: {query}\nAnswer:\n";
    int64_t n = 1000, start = 0, min_steps = -1, max_steps = -1, max_number = -1;
    sq_opt opts[] = {
        {"n", SQ_OPT_INT, &n, "N", "number of problems (default 1000)"},
        {"out", SQ_OPT_STR, &out, "PATH", "output JSONL (default: stdout)"},
        {"start", SQ_OPT_INT, &start, "I", "index of the first problem (default 0); ids stay stable"},
        {"min-steps", SQ_OPT_INT, &min_steps, "K", "fewest events per problem (default 1)"},
        {"max-steps", SQ_OPT_INT, &max_steps, "K", "most events per problem (default 3)"},
        {"max-number", SQ_OPT_INT, &max_number, "M", "largest number a question states (default 20)"},
        {"format", SQ_OPT_STR, &format, "jsonl|text|prompts|chat",
         "records (default); plain text (a tokenizer corpus); generation prompts {id, prompt, query, answer}; or "
         "chat requests {id, messages: [the question as the user turn], query, answer}"},
        {"prompt-template", SQ_OPT_STR, &tmpl, "TEXT", "prompts: the prompt with {query} (as scalequest train)"},
        {"ops", SQ_OPT_STR, &ops, "LETTERS", "operations: a add, s subtract, b boxes, m multiply, d divide (default asbmd)"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, "[--n N] [--seed S] [--out F] [difficulty options]", opts, SQ_ARRAY_LEN(opts),
                          NULL, 0, &npos);
    if (rc >= 0) return rc;
    sq_world_opts wo;
    sq_world_opts_default(&wo);
    if (min_steps >= 0) wo.min_steps = (int)min_steps;
    if (max_steps >= 0) wo.max_steps = (int)max_steps;
    if (max_number >= 0) wo.max_number = (int)max_number;
    if (ops) snprintf(wo.ops, sizeof wo.ops, "%s", ops);
    sq_err e;
    if (sq_world_opts_check(&wo, &e)) return sq_cli_usage_error("world", "%s", e.msg);
    if (n < 0 || start < 0) return sq_cli_usage_error("world", "--n and --start must not be negative");
    int fmt = !strcmp(format, "jsonl")     ? 0
              : !strcmp(format, "text")    ? 1
              : !strcmp(format, "prompts") ? 2
              : !strcmp(format, "chat")    ? 3
                                           : -1;
    if (fmt < 0) return sq_cli_usage_error("world", "--format: unknown format \"%s\"", format);

    sq_atomic_file af;
    FILE *fp = stdout;
    if (out) {
        if (sq_atomic_open(&af, out, &e)) return sq_cli_fail("world", "%s", e.msg);
        fp = af.fp;
    }
    for (int64_t i = 0; i < n; i++) {
        sq_world_problem p;
        if (sq_world_generate(&wo, sq_common.seed, (uint64_t)(start + i), &p, &e)) {
            if (out) sq_atomic_abort(&af);
            return sq_cli_fail("world", "%s", e.msg);
        }
        if (fmt == 1) {
            if (fprintf(fp, "%s\n%s\n\n", p.query, p.response) < 0) {
                if (out) sq_atomic_abort(&af);
                return sq_cli_fail("world", "writing %s failed", out ? out : "stdout");
            }
            continue;
        }
        cJSON *r = cJSON_CreateObject();
        char ans[32];
        snprintf(ans, sizeof ans, "%lld", (long long)p.answer);
        cJSON_AddStringToObject(r, "id", p.id);
        if (fmt == 2) {
            char *pr = sq_text_format_prompt(tmpl, p.query);
            cJSON_AddStringToObject(r, "prompt", pr ? pr : "");
            free(pr);
        } else if (fmt == 3) {
            cJSON *msgs = cJSON_AddArrayToObject(r, "messages"), *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "user");
            cJSON_AddStringToObject(m, "content", p.query);
            cJSON_AddItemToArray(msgs, m);
        }
        cJSON_AddStringToObject(r, "query", p.query);
        if (fmt == 0) cJSON_AddStringToObject(r, "response", p.response);
        cJSON_AddStringToObject(r, "answer", ans);
        cJSON_AddNumberToObject(r, "steps", p.steps);
        cJSON_AddNumberToObject(r, "max_number", p.max_number);
        cJSON_AddStringToObject(r, "ops", p.ops_used);
        char *line = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        if (!line || fprintf(fp, "%s\n", line) < 0) {
            free(line);
            if (out) sq_atomic_abort(&af);
            return sq_cli_fail("world", "writing %s failed", out ? out : "stdout");
        }
        free(line);
    }
    if (out && sq_atomic_commit(&af, &e)) return sq_cli_fail("world", "%s", e.msg);
    return SQ_EXIT_OK;
}

SQ_COMMAND(world, "world", "generate tiny-world math word problems (JSONL)", cmd_world);
