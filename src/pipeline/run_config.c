/* The run config: YAML (read with libyaml) turned into a cJSON tree with the line of every key,
 * checked against the embedded default (which doubles as the schema) and laid over it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "scalequest/run.h"

/* Plain (unquoted) YAML scalars take a type the way YAML 1.1 core readers do: true/false,
 * null/~, integers, floats; anything else and every quoted scalar is a string. */
static cJSON *scalar_to_json(const yaml_node_t *n) {
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return cJSON_CreateString(s);
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "yes")) return cJSON_CreateBool(1);
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "no")) return cJSON_CreateBool(0);
    if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null")) return cJSON_CreateNull();
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s + len && errno == 0 && strspn(s, "+-0123456789.eE") == len) return cJSON_CreateNumber(v);
    return cJSON_CreateString(s);
}

static int add_line(cJSON *lines, const char *key, int line) {
    cJSON *old = cJSON_GetObjectItemCaseSensitive(lines, key);
    if (old) cJSON_DeleteItemFromObjectCaseSensitive(lines, key);
    return cJSON_AddNumberToObject(lines, key, line) ? 0 : -1;
}

/* Convert node into *out, recording "path" -> line for every map key and sequence item. */
/* budget: nodes left to convert. Aliases make the document a graph, so a few lines can stand
 * for billions of nodes ("billion laughs"); a config has a few hundred. */
static int convert(yaml_document_t *d, yaml_node_t *n, const char *path, cJSON *lines, cJSON **out, const char *name,
                   int depth, int *budget, sq_err *e) {
    *out = NULL;
    if (!n) return sq_fail(e, SQ_EPARSE, "%s: empty node", name);
    if (depth > 16) return sq_fail(e, SQ_EPARSE, "%s:%zu: nested too deeply", name, n->start_mark.line + 1);
    if (--*budget < 0) return sq_fail(e, SQ_EPARSE, "%s:%zu: more than 20000 values (aliases?)", name, n->start_mark.line + 1);
    switch (n->type) {
    case YAML_SCALAR_NODE:
        *out = scalar_to_json(n);
        return *out ? 0 : sq_fail(e, SQ_ENOMEM, "out of memory");
    case YAML_SEQUENCE_NODE: {
        cJSON *a = cJSON_CreateArray();
        if (!a) return sq_fail(e, SQ_ENOMEM, "out of memory");
        int i = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
            cJSON *v;
            char sub[512];
            snprintf(sub, sizeof sub, "%s[%d]", path, i);
            if (convert(d, yaml_document_get_node(d, *it), sub, lines, &v, name, depth + 1, budget, e)) {
                cJSON_Delete(a);
                return SQ_EPARSE;
            }
            cJSON_AddItemToArray(a, v);
        }
        *out = a;
        return 0;
    }
    case YAML_MAPPING_NODE: {
        cJSON *o = cJSON_CreateObject();
        if (!o) return sq_fail(e, SQ_ENOMEM, "out of memory");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(d, p->key), *v = yaml_document_get_node(d, p->value);
            int line = k ? (int)k->start_mark.line + 1 : 0;
            if (!k || k->type != YAML_SCALAR_NODE) {
                cJSON_Delete(o);
                return sq_fail(e, SQ_EPARSE, "%s:%d: a key must be a plain word", name, line);
            }
            const char *key = (const char *)k->data.scalar.value;
            char sub[512];
            if (strlen(path) + strlen(key) + 2 > sizeof sub) {
                cJSON_Delete(o);
                return sq_fail(e, SQ_EPARSE, "%s:%d: key too long", name, line);
            }
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
            if (cJSON_GetObjectItemCaseSensitive(o, key)) {
                cJSON_Delete(o);
                return sq_fail(e, SQ_EPARSE, "%s:%d: %s: key given twice", name, line, sub);
            }
            cJSON *cv;
            if (convert(d, v, sub, lines, &cv, name, depth + 1, budget, e)) {
                cJSON_Delete(o);
                return SQ_EPARSE;
            }
            cJSON_AddItemToObject(o, key, cv);
            add_line(lines, sub, line);
        }
        *out = o;
        return 0;
    }
    default:
        return sq_fail(e, SQ_EPARSE, "%s:%zu: unsupported YAML node", name, n->start_mark.line + 1);
    }
}

static int yaml_to_json(const char *name, const char *text, size_t len, cJSON **root, cJSON *lines, sq_err *e) {
    yaml_parser_t ps;
    yaml_document_t doc;
    *root = NULL;
    if (!yaml_parser_initialize(&ps)) return sq_fail(e, SQ_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    if (!yaml_parser_load(&ps, &doc)) {
        int rc = sq_fail(e, SQ_EPARSE, "%s:%zu:%zu: %s", name, ps.problem_mark.line + 1, ps.problem_mark.column + 1,
                         ps.problem ? ps.problem : "invalid YAML");
        yaml_parser_delete(&ps);
        return rc;
    }
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    int rc = 0;
    if (!top) *root = cJSON_CreateObject(); /* an empty file: all defaults */
    else if (top->type != YAML_MAPPING_NODE)
        rc = sq_fail(e, SQ_EPARSE, "%s:%zu: the config must be a mapping of keys", name, top->start_mark.line + 1);
    else {
        int budget = 20000;
        rc = convert(&doc, top, "", lines, root, name, 0, &budget, e);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&ps);
    return rc;
}

static const char *type_name(const cJSON *v) {
    if (cJSON_IsBool(v)) return "true/false";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "a list";
    if (cJSON_IsObject(v)) return "a mapping";
    return "null";
}

static int same_type(const cJSON *a, const cJSON *b) {
    if (cJSON_IsBool(a)) return cJSON_IsBool(b);
    if (cJSON_IsNumber(a)) return cJSON_IsNumber(b);
    if (cJSON_IsString(a)) return cJSON_IsString(b);
    if (cJSON_IsArray(a)) return cJSON_IsArray(b);
    if (cJSON_IsObject(a)) return cJSON_IsObject(b);
    return 1;
}

static int line_of(const cJSON *lines, const char *key) {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(lines, key);
    return cJSON_IsNumber(l) ? l->valueint : 0;
}

static int is_scalar(const cJSON *v) { return cJSON_IsBool(v) || cJSON_IsNumber(v) || cJSON_IsString(v); }

/* Lay user over def (both objects) at path; options maps are open (any key, scalars or lists
 * of scalars, typed like the default's value when it has one); every other key must exist in
 * the default with the same type. */
static int overlay(cJSON *def, cJSON *user, const char *path, const cJSON *lines, const char *name, sq_err *e) {
    int open = !strcmp(path + (strlen(path) >= 7 ? strlen(path) - 7 : 0), "options");
    for (cJSON *u = user->child; u; u = u->next) {
        char key[512];
        snprintf(key, sizeof key, "%s%s%s", path, *path ? "." : "", u->string);
        int line = line_of(lines, key);
        cJSON *d = cJSON_GetObjectItemCaseSensitive(def, u->string);
        if (!d && !open) return sq_fail(e, SQ_EINVAL, "%s:%d: %s: unknown key", name, line, key);
        if (open) {
            int ok = is_scalar(u) || cJSON_IsNull(u);
            if (cJSON_IsArray(u)) {
                ok = 1;
                for (cJSON *x = u->child; x; x = x->next) ok &= is_scalar(x);
            }
            if (!ok)
                return sq_fail(e, SQ_EINVAL, "%s:%d: %s: an option must be a value or a list of values, not %s", name,
                               line, key, type_name(u));
            if (d && !cJSON_IsNull(u) && !same_type(d, u) && !(cJSON_IsString(d) && cJSON_IsNumber(u)))
                return sq_fail(e, SQ_EINVAL, "%s:%d: %s: expected %s, got %s", name, line, key, type_name(d),
                               type_name(u));
        } else if (!same_type(d, u)) {
            return sq_fail(e, SQ_EINVAL, "%s:%d: %s: expected %s, got %s", name, line, key, type_name(d),
                           type_name(u));
        }
        if (cJSON_IsArray(u) && cJSON_IsArray(d) && !open) {
            for (cJSON *x = u->child; x; x = x->next)
                if (d->child && !same_type(d->child, x))
                    return sq_fail(e, SQ_EINVAL, "%s:%d: %s: each item must be %s, got %s", name, line, key,
                                   type_name(d->child), type_name(x));
        }
        if (cJSON_IsObject(u) && d) {
            if (overlay(d, u, key, lines, name, e)) return SQ_EINVAL;
            continue;
        }
        cJSON *copy = cJSON_Duplicate(u, 1);
        if (!copy) return sq_fail(e, SQ_ENOMEM, "out of memory");
        if (d) cJSON_ReplaceItemInObjectCaseSensitive(def, u->string, copy);
        else cJSON_AddItemToObject(def, u->string, copy);
    }
    return 0;
}

/* Whole-config checks that the types alone do not catch. */
static int check_values(sq_run_config *c, const char *name, sq_err *e) {
    const cJSON *t = sq_run_config_get(c, "threads"), *s = sq_run_config_get(c, "seed");
    char w[600];
    if (t->valuedouble < 0 || t->valuedouble > 4096 || t->valuedouble != (int)t->valuedouble) {
        sq_run_config_where(c, "threads", w, sizeof w);
        return sq_fail(e, SQ_EINVAL, "%s: threads must be a whole number 0..4096", w);
    }
    if (s->valuedouble < 0 || s->valuedouble > 9007199254740992.0 || s->valuedouble != (double)(int64_t)s->valuedouble) {
        sq_run_config_where(c, "seed", w, sizeof w);
        return sq_fail(e, SQ_EINVAL, "%s: seed must be a whole number >= 0", w);
    }
    if (!*sq_run_config_str(c, "run_dir")) {
        sq_run_config_where(c, "run_dir", w, sizeof w);
        return sq_fail(e, SQ_EINVAL, "%s: run_dir is empty", w);
    }
    (void)name;
    return 0;
}

int sq_run_config_parse(sq_run_config *c, const char *name, const char *text, size_t len, sq_err *e) {
    memset(c, 0, sizeof *c);
    c->path = sq_strdup(name);
    c->lines = cJSON_CreateObject();
    cJSON *dl = cJSON_CreateObject(), *user = NULL;
    int rc = (!c->path || !c->lines || !dl) ? sq_fail(e, SQ_ENOMEM, "out of memory") : 0;
    const char *def = sq_run_default_config();
    if (!rc) rc = yaml_to_json("(default config)", def, strlen(def), &c->root, dl, e);
    /* Every stage takes `shards:` (default 1, run_plan.c); it is added here rather than
     * written 28 times into the printed default. */
    const cJSON *st = rc ? NULL : cJSON_GetObjectItemCaseSensitive(c->root, "stages");
    for (cJSON *x = st ? st->child : NULL; x; x = x->next)
        if (cJSON_IsObject(x) && !cJSON_GetObjectItemCaseSensitive(x, "shards")) cJSON_AddNumberToObject(x, "shards", 1);
    if (!rc) rc = yaml_to_json(name, text, len, &user, c->lines, e);
    if (!rc) rc = overlay(c->root, user, "", c->lines, name, e);
    if (!rc) rc = check_values(c, name, e);
    cJSON_Delete(user);
    cJSON_Delete(dl);
    if (rc) sq_run_config_free(c);
    return rc;
}

int sq_run_config_load(sq_run_config *c, const char *path, sq_err *e) {
    char *text;
    size_t len;
    memset(c, 0, sizeof *c);
    int rc = sq_file_read_all(path, &text, &len, e);
    if (rc) return rc;
    rc = sq_run_config_parse(c, path, text, len, e);
    free(text);
    return rc;
}

void sq_run_config_free(sq_run_config *c) {
    free(c->path);
    cJSON_Delete(c->root);
    cJSON_Delete(c->lines);
    memset(c, 0, sizeof *c);
}

const cJSON *sq_run_config_get(const sq_run_config *c, const char *key) {
    const cJSON *v = c->root;
    char part[256];
    while (v && *key) {
        size_t n = strcspn(key, ".");
        if (n >= sizeof part) return NULL;
        memcpy(part, key, n);
        part[n] = 0;
        v = cJSON_GetObjectItemCaseSensitive(v, part);
        key += n + (key[n] == '.');
    }
    return v;
}

const char *sq_run_config_str(const sq_run_config *c, const char *key) {
    const cJSON *v = sq_run_config_get(c, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void sq_run_config_where(const sq_run_config *c, const char *key, char *buf, size_t n) {
    int line = line_of(c->lines, key);
    if (line) snprintf(buf, n, "%s:%d: %s", c->path, line, key);
    else snprintf(buf, n, "%s (default)", key);
}
