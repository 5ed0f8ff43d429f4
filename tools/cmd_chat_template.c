/* scalequest chat-template: show what a chat template is recognised as, or render
 * conversations with it (one JSONL record in, one out: {"id", "text"} or {"id", "error"}). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/chat_template.h"

static cJSON *strings(const char *const *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static void show(const sq_chat_template *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "family", t->name);
    cJSON_AddStringToObject(o, "bos", t->bos);
    cJSON_AddStringToObject(o, "eos", t->eos);
    if (t->default_system) cJSON_AddStringToObject(o, "default_system", t->default_system);
    else cJSON_AddNullToObject(o, "default_system");
    cJSON_AddStringToObject(o, "user_prefix", t->user_prefix);
    cJSON_AddStringToObject(o, "assistant_prefix", t->assistant_prefix);
    sq_buf qp = {0};
    sq_err e;
    if (sq_chat_template_question_prefix(t, &qp, &e) == 0) cJSON_AddStringToObject(o, "question_prefix", qp.data ? qp.data : "");
    sq_buf_free(&qp);
    cJSON_AddItemToObject(o, "user_stops", strings(t->user_stops, t->n_user_stops));
    cJSON_AddItemToObject(o, "assistant_stops", strings(t->assistant_stops, t->n_assistant_stops));
    char *s = cJSON_PrintUnformatted(o);
    puts(s ? s : "{}");
    free(s);
    cJSON_Delete(o);
}

/* Render one record; returns the output record (caller frees) or NULL with e set. */
static cJSON *render_record(const sq_chat_template *t, const cJSON *rec, const char *path, long line, sq_err *e) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "id");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rec, "messages");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(rec, "add_generation_prompt");
    int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : -1;
    if (!cJSON_IsString(id) || n < 0) {
        sq_fail(e, SQ_EPARSE, "%s:%ld: needs a string \"id\" and a \"messages\" array", path, line);
        return NULL;
    }
    sq_chat_msg *m = calloc((size_t)(n ? n : 1), sizeof *m);
    if (!m) {
        sq_fail(e, SQ_ENOMEM, "out of memory");
        return NULL;
    }
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
            free(m);
            sq_fail(e, SQ_EPARSE, "%s:%ld: message %d needs string \"role\" and \"content\"", path, line, k);
            return NULL;
        }
        m[k++] = (sq_chat_msg){role->valuestring, content->valuestring};
    }
    sq_buf out = {0};
    sq_err re = {0};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id->valuestring);
    if (sq_chat_template_render(t, m, n, gen ? cJSON_IsTrue(gen) : 1, &out, &re))
        cJSON_AddStringToObject(o, "error", re.msg);
    else
        cJSON_AddStringToObject(o, "text", out.data ? out.data : "");
    sq_buf_free(&out);
    free(m);
    return o;
}

static int cmd_chat_template(int argc, char **argv) {
    const char *spec = NULL, *in = NULL, *bos = NULL, *eos = NULL;
    int question_prefix = 0;
    const sq_opt opts[] = {
        {"template", SQ_OPT_STR, &spec, "SPEC", "built-in name, model folder, tokenizer_config.json or Jinja file (required)"},
        {"in", SQ_OPT_STR, &in, "PATH", "JSONL of {id, messages, add_generation_prompt}: render each to stdout"},
        {"bos", SQ_OPT_STR, &bos, "S", "BOS text, for a bare Jinja file (default: the family's)"},
        {"eos", SQ_OPT_STR, &eos, "S", "EOS text, for a bare Jinja file (default: the family's)"},
        {"question-prefix", SQ_OPT_FLAG, &question_prefix, NULL,
         "print only the bare user-turn prefix questions are sampled from, as a JSON string"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, "--template SPEC [--in conversations.jsonl]", opts, SQ_ARRAY_LEN(opts), NULL, 0,
                          &npos);
    if (rc >= 0) return rc;
    if (!spec) return sq_cli_usage_error("chat-template", "--template is required");
    sq_chat_template *t = NULL;
    sq_err e = {0};
    if ((bos || eos) && sq_file_exists(spec) && !sq_dir_exists(spec)) {
        char *src = NULL;
        size_t len;
        if (sq_file_read_all(spec, &src, &len, &e) == 0) sq_chat_template_detect(&t, src, bos, eos, spec, &e);
        free(src);
    } else {
        sq_chat_template_open(&t, spec, &e);
    }
    if (!t) return sq_cli_fail("chat-template", "%s", e.msg);
    if (question_prefix) {
        sq_buf qp = {0};
        rc = sq_chat_template_question_prefix(t, &qp, &e);
        sq_chat_template_free(t);
        if (rc) return sq_cli_fail("chat-template", "%s", e.msg);
        cJSON *str = cJSON_CreateString(qp.data ? qp.data : "");
        char *js = str ? cJSON_PrintUnformatted(str) : NULL;
        cJSON_Delete(str);
        sq_buf_free(&qp);
        if (!js) return sq_cli_fail("chat-template", "out of memory");
        puts(js);
        free(js);
        return SQ_EXIT_OK;
    }
    if (!in) {
        show(t);
        sq_chat_template_free(t);
        return SQ_EXIT_OK;
    }
    FILE *f = strcmp(in, "-") ? fopen(in, "r") : stdin;
    if (!f) {
        sq_chat_template_free(t);
        return sq_cli_fail("chat-template", "%s: %s", in, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int status = SQ_EXIT_OK;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (got <= 1) continue;
        cJSON *rec = cJSON_ParseWithLength(line, (size_t)got);
        cJSON *o = rec ? render_record(t, rec, in, lineno, &e) : NULL;
        if (!rec) sq_fail(&e, SQ_EPARSE, "%s:%ld: not valid JSON", in, lineno);
        cJSON_Delete(rec);
        if (!o) {
            status = sq_cli_fail("chat-template", "%s", e.msg);
            break;
        }
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (s) puts(s);
        free(s);
    }
    free(line);
    if (f != stdin) fclose(f);
    sq_chat_template_free(t);
    return status;
}

SQ_COMMAND(chat_template, "chat-template", "show or apply a model's chat template", cmd_chat_template);
