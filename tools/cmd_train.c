/* scalequest train: SFT, QFT, DPO (QPO) or scalar-head regression of a Llama-family model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scalequest/chat_template.h"
#include "scalequest/dist.h"
#include "scalequest/train.h"

/* "dim=64,layers=2,heads=4,kv_heads=2,ffn=172,vocab=512,seq=256[,arch=qwen2,tie=1,theta=10000]". */
static int parse_shape(const char *s, sq_model_config *c, char *why, size_t whylen) {
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "llama");
    c->max_seq_len = 512, c->rope_theta = 10000.0f, c->norm_eps = 1e-5f, c->tie_embeddings = 1;
    c->bos_id = -1, c->eos_id = -1, c->pad_id = -1;
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "float32");
    char *dup = sq_strdup(s), *save = NULL;
    int rc = 0;
    for (char *kv = strtok_r(dup, ",", &save); kv && !rc; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            snprintf(why, whylen, "\"%s\" is not key=value", kv);
            rc = -1;
            break;
        }
        *eq = 0;
        const char *k = kv, *v = eq + 1;
        if (!strcmp(k, "arch")) {
            snprintf(c->arch, sizeof c->arch, "%s", v);
            continue;
        }
        char *end;
        double x = strtod(v, &end);
        if (*end || end == v) {
            snprintf(why, whylen, "%s=%s is not a number", k, v);
            rc = -1;
        } else if (!strcmp(k, "dim")) c->dim = (int)x;
        else if (!strcmp(k, "layers")) c->n_layers = (int)x;
        else if (!strcmp(k, "heads")) c->n_heads = (int)x;
        else if (!strcmp(k, "kv_heads")) c->n_kv_heads = (int)x;
        else if (!strcmp(k, "head_dim")) c->head_dim = (int)x;
        else if (!strcmp(k, "ffn")) c->ffn_dim = (int)x;
        else if (!strcmp(k, "vocab")) c->vocab_size = (int)x;
        else if (!strcmp(k, "seq")) c->max_seq_len = (int)x;
        else if (!strcmp(k, "theta")) c->rope_theta = (float)x;
        else if (!strcmp(k, "tie")) c->tie_embeddings = x != 0;
        else if (!strcmp(k, "bias")) c->attn_bias = x != 0;
        else if (!strcmp(k, "eos")) c->eos_id = (int)x;
        else if (!strcmp(k, "bos")) c->bos_id = (int)x;
        else {
            snprintf(why, whylen, "unknown key \"%s\"", k);
            rc = -1;
        }
    }
    free(dup);
    if (!rc && !strcmp(c->arch, "qwen2")) c->attn_bias = 1;
    if (!rc && !c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (!rc && !c->head_dim && c->n_heads) c->head_dim = c->dim / c->n_heads;
    return rc;
}

/* The chat template text records are formatted with: the one named, else the starting
 * model's own (its tokenizer_config.json), else none (the plain prompt format). */
static int open_chat_template(sq_chat_template **chat, const char *spec, const char *model, int plain_given, sq_err *e) {
    *chat = NULL;
    if (spec && plain_given)
        return sq_fail(e, SQ_EINVAL, "--chat-template replaces --prompt-template and --qft-prefix; give one or the other");
    if (spec) return sq_chat_template_open(chat, spec, e);
    if (!model || plain_given) return 0;
    /* a folder without tokenizer_config.json, or one without a chat template, has none */
    int rc = sq_chat_template_open(chat, model, e);
    if (rc == SQ_ENOTFOUND) return 0;
    if (!rc) sq_info("train: formatting text with %s's chat template (%s)", model, (*chat)->name);
    return rc;
}

/* The output folder carries the template it was trained with, so generation renders
 * prompts (and finds the question prefix) the same way. */
static int save_chat_template(const sq_chat_template *chat, const char *out, sq_err *e) {
    sq_buf b = {0};
    int rc = sq_chat_template_config_json(chat, &b, e);
    if (rc == SQ_EUNSUP) {
        sq_warn("train: %s; %s gets no tokenizer_config.json", e->msg, out);
        return 0;
    }
    char *path = rc ? NULL : sq_path_join(out, "tokenizer_config.json");
    if (path) rc = sq_file_write_atomic(path, b.data, b.len, e);
    free(path);
    sq_buf_free(&b);
    return rc;
}

static int train_main(int argc, char **argv) {
    const char *grads_out = NULL, *prompt_tmpl = NULL, *qft_prefix = NULL, *eos_token = NULL, *chat_spec = NULL;
    const char *mode_s = "sft", *model = NULL, *init = NULL, *data = NULL, *out = NULL, *tok = NULL, *sched = "cosine";
    int64_t batch = 8, seq = 256, accum = 1, epochs = 1, max_steps = 0, warmup_steps = -1, save_every = 0;
    double lr = 1e-4, wd = 0.0, warmup_ratio = 0.0, clip = 1.0, beta = 0.1, init_std = 0.02, b1 = 0.9, b2 = 0.999,
           eps = 1e-8;
    int no_pack_flag = 0;
    sq_opt opts[] = {
        {"mode", SQ_OPT_STR, &mode_s, "sft|qft|dpo|regress", "what to train (default sft)"},
        {"model", SQ_OPT_STR, &model, "DIR", "HF folder, GGUF file or registry name (scalequest models) to start from"},
        {"init-config", SQ_OPT_STR, &init, "SPEC", "start from random weights: a config.json or dim=..,layers=..,..."},
        {"data", SQ_OPT_STR, &data, "PATH", "JSONL of token-id records (see docs/train.md)"},
        {"out", SQ_OPT_STR, &out, "DIR", "output HF folder (also holds the resumable checkpoint and train_log.jsonl)"},
        {"tokenizer", SQ_OPT_STR, &tok, "PATH", "tokenizer.json to copy into the output"},
        {"batch", SQ_OPT_INT, &batch, "B", "rows per micro-batch (default 8)"},
        {"seq-len", SQ_OPT_INT, &seq, "T", "tokens per row (default 256)"},
        {"accum", SQ_OPT_INT, &accum, "K", "micro-batches per optimiser step (default 1)"},
        {"epochs", SQ_OPT_INT, &epochs, "E", "passes over the data (default 1)"},
        {"max-steps", SQ_OPT_INT, &max_steps, "S", "stop after S optimiser steps"},
        {"lr", SQ_OPT_DOUBLE, &lr, "X", "peak learning rate (default 1e-4)"},
        {"weight-decay", SQ_OPT_DOUBLE, &wd, "X", "AdamW decoupled weight decay on matrices (default 0)"},
        {"adam-beta1", SQ_OPT_DOUBLE, &b1, "X", "default 0.9"},
        {"adam-beta2", SQ_OPT_DOUBLE, &b2, "X", "default 0.999"},
        {"adam-eps", SQ_OPT_DOUBLE, &eps, "X", "default 1e-8"},
        {"schedule", SQ_OPT_STR, &sched, "cosine|linear|constant", "after warmup (default cosine, to zero)"},
        {"warmup-ratio", SQ_OPT_DOUBLE, &warmup_ratio, "X", "warmup as a share of the steps"},
        {"warmup-steps", SQ_OPT_INT, &warmup_steps, "N", "warmup steps (overrides the ratio)"},
        {"clip", SQ_OPT_DOUBLE, &clip, "X", "clip the global gradient norm (default 1.0; 0 off)"},
        {"beta", SQ_OPT_DOUBLE, &beta, "X", "DPO beta (default 0.1)"},
        {"save-every", SQ_OPT_INT, &save_every, "N", "resumable checkpoint every N steps"},
        {"no-pack", SQ_OPT_FLAG, &no_pack_flag, NULL, "one example per row"},
        {"grads-out", SQ_OPT_STR, &grads_out, "PATH", "write the first step's gradients as safetensors (cross-checks)"},
        {"chat-template", SQ_OPT_STR, &chat_spec, "SPEC",
         "text data: format with this chat template (built-in name, model folder, tokenizer_config.json or Jinja "
         "file); default: the --model folder's own, if it has one"},
        {"prompt-template", SQ_OPT_STR, &prompt_tmpl, "TEXT", "text data: prompt with {query} (default \"Question: {query}\\nAnswer:\\n\")"},
        {"qft-prefix", SQ_OPT_STR, &qft_prefix, "TEXT", "text data: what precedes a question in QFT (default \"Question:\")"},
        {"eos-token", SQ_OPT_STR, &eos_token, "TOKEN", "text data: end-of-text token (default <|endoftext|>)"},
        {"init-std", SQ_OPT_DOUBLE, &init_std, "X", "std of random init (default 0.02)"},
    };
    int npos;
    int rc = sq_cli_parse(argc, argv, "--mode M (--model DIR | --init-config SPEC) --data F --out DIR [options]", opts,
                          SQ_ARRAY_LEN(opts), NULL, 0, &npos);
    if (rc >= 0) return rc;
    sq_train_opts o;
    sq_train_opts_default(&o);
    if (sq_train_mode_parse(mode_s, &o.mode)) return sq_cli_usage_error("train", "--mode: unknown mode \"%s\"", mode_s);
    if (sq_sched_parse(sched, &o.sched)) return sq_cli_usage_error("train", "--schedule: unknown schedule \"%s\"", sched);
    if (!data || !out) return sq_cli_usage_error("train", "--data and --out are required");
    if (!!model == !!init) return sq_cli_usage_error("train", "give exactly one of --model and --init-config");
    if (batch <= 0 || seq <= 1 || accum <= 0 || epochs <= 0 || lr <= 0)
        return sq_cli_usage_error("train", "--batch, --seq-len, --accum, --epochs and --lr must be positive");
    o.batch = (int)batch, o.seq_len = (int)seq, o.accum = (int)accum, o.epochs = (int)epochs, o.max_steps = max_steps;
    o.pack = !no_pack_flag, o.lr = lr, o.weight_decay = wd, o.beta1 = b1, o.beta2 = b2, o.eps = eps, o.clip = clip;
    o.warmup_ratio = warmup_ratio, o.warmup_steps = warmup_steps, o.dpo_beta = beta, o.seed = sq_common.seed;
    o.save_every = save_every, o.out_dir = out, o.tokenizer = tok, o.grads_out = grads_out;
    if (sq_common.quiet || sq_dist_rank() > 0) sq_progress_set_quiet(1);

    sq_err e;
    /* Token-id records need no tokenizer; text records do (from --tokenizer or the model). */
    int text_data = 0;
    {
        FILE *f = fopen(data, "r");
        if (!f) return sq_cli_fail("train", "%s: cannot open", data);
        char head[4096] = "";
        while (fgets(head, sizeof head, f) && strspn(head, " \t\r\n") == strlen(head)) {
        }
        fclose(f);
        text_data = !strstr(head, "\"input_ids\"") && !strstr(head, "\"chosen_ids\"");
    }
    char *model_tok = NULL;
    /* A GGUF model (a file or a registry name) carries its tokenizer and chat template: the
     * output gets them as tokenizer.json and tokenizer_config.json, so it is a complete HF
     * folder whatever the data. */
    int gguf_model = model && !sq_dir_exists(model);
    if (gguf_model && !tok) {
        sq_tokenizer *gt = NULL;
        char *tj = sq_path_join(out, "tokenizer.json");
        rc = tj ? sq_tok_load(&gt, model, &e) : sq_fail(&e, SQ_ENOMEM, "out of memory");
        if (!rc) rc = sq_mkdirs(out, &e);
        if (!rc) rc = sq_tok_save_json(gt, tj, &e);
        sq_tok_free(gt);
        if (rc) {
            free(tj);
            return sq_cli_fail("train", "%s", e.msg);
        }
        o.tokenizer = model_tok = tj;
    }
    if (!tok && model && !gguf_model) {
        model_tok = sq_path_join(model, "tokenizer.json");
        if (model_tok && sq_file_exists(model_tok)) o.tokenizer = model_tok;
    }
    sq_tokenizer *tk = NULL;
    if (text_data) {
        if (!o.tokenizer) {
            free(model_tok);
            return sq_cli_usage_error("train", "%s holds text: give --tokenizer (or a --model with tokenizer.json)", data);
        }
        if (sq_tok_load(&tk, gguf_model && !tok ? model : o.tokenizer, &e)) {
            free(model_tok);
            return sq_cli_fail("train", "%s", e.msg);
        }
    }
    sq_text_format fmt;
    sq_text_format_default(&fmt);
    if (prompt_tmpl) fmt.prompt = prompt_tmpl;
    if (qft_prefix) fmt.qft_prefix = qft_prefix;
    if (eos_token) fmt.eos_token = eos_token;
    sq_chat_template *chat = NULL;
    if ((text_data || gguf_model) && open_chat_template(&chat, chat_spec, model, prompt_tmpl || qft_prefix, &e)) {
        sq_tok_free(tk);
        free(model_tok);
        return chat_spec && (prompt_tmpl || qft_prefix) ? sq_cli_usage_error("train", "%s", e.msg)
                                                        : sq_cli_fail("train", "%s", e.msg);
    }
    fmt.chat = text_data ? chat : NULL;
    if (chat && eos_token) sq_warn("train: --eos-token is ignored: the chat template says what ends a turn");
    sq_tmodel m;
    int want_score = o.mode == SQ_TRAIN_REGRESS;
    if (model) {
        if (sq_tm_load(&m, model, want_score, &e)) {
            sq_tok_free(tk);
            free(model_tok);
            sq_chat_template_free(chat);
            return sq_cli_fail("train", "%s", e.msg);
        }
    } else {
        sq_model_config c;
        char why[128] = "";
        if (sq_file_exists(init)) {
            char *text = NULL;
            size_t len;
            rc = sq_file_read_all(init, &text, &len, &e);
            if (!rc) rc = sq_model_config_from_json(&c, text, init, &e);
            free(text);
            if (rc) {
                sq_tok_free(tk);
                free(model_tok);
                sq_chat_template_free(chat);
                return sq_cli_fail("train", "%s", e.msg);
            }
            if (c.head_dim <= 0 && c.n_heads > 0) c.head_dim = c.dim / c.n_heads;
        } else if (parse_shape(init, &c, why, sizeof why)) {
            sq_tok_free(tk);
            free(model_tok);
            sq_chat_template_free(chat);
            return sq_cli_usage_error("train", "--init-config: %s", why);
        }
        if (tk && c.vocab_size <= 0) c.vocab_size = sq_tok_vocab_size(tk);
        if (tk && c.eos_id < 0) {
            /* with a chat template, generation ends where an assistant turn does */
            const char *end = chat ? (chat->n_assistant_stops ? chat->assistant_stops[0] : chat->eos) : fmt.eos_token;
            int32_t id = sq_tok_find(tk, end, strlen(end));
            c.eos_id = id >= 0 ? id : sq_tok_eos(tk);
        }
        if (sq_tm_create(&m, &c, want_score, &e)) {
            sq_tok_free(tk);
            free(model_tok);
            sq_chat_template_free(chat);
            return sq_cli_fail("train", "%s", e.msg);
        }
        sq_tm_init_random(&m, sq_common.seed, (float)init_std);
    }
    sq_tdata d;
    rc = text_data ? sq_tdata_load_text(&d, data, o.mode, tk, &fmt, &e) : sq_tdata_load_ids(&d, data, o.mode, &e);
    sq_tok_free(tk);
    if (rc) {
        sq_tm_free(&m);
        free(model_tok);
        sq_chat_template_free(chat);
        return sq_cli_fail("train", "%s", e.msg);
    }
    double loss;
    rc = sq_train_run(&m, d.ex, d.n, &o, &loss, &e);
    sq_tdata_free(&d);
    sq_tm_free(&m);
    free(model_tok);
    if (!rc && chat && sq_dist_rank() == 0) rc = save_chat_template(chat, out, &e);
    sq_chat_template_free(chat);
    if (rc) return sq_cli_fail("train", "%s", e.msg);
    if (!sq_common.quiet && sq_dist_rank() == 0) fprintf(stderr, "train: done, final loss %.6f, model in %s\n", loss, out);
    return SQ_EXIT_OK;
}

/* Under mpirun, every rank runs this; a rank that fails ends the whole job (dist.h). */
static int cmd_train(int argc, char **argv) {
    sq_err e;
    if (sq_dist_begin(&e)) return sq_cli_fail("train", "%s", e.msg);
    int rc = train_main(argc, argv);
    if (rc != SQ_EXIT_OK && sq_dist_size() > 1)
        fprintf(stderr, "scalequest: train: rank %d of %d stopped; ending the job (resume from the last checkpoint)\n",
                sq_dist_rank(), sq_dist_size());
    sq_dist_end(rc != SQ_EXIT_OK);
    return rc;
}

SQ_COMMAND(train, "train", "train a model: sft, qft, dpo (QPO) or regress (scalar head)", cmd_train);
