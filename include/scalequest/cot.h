/* cot — the chain-of-thought prompt and the final-answer rule shared by `respond` and `eval`.
 *
 * ScaleQuest's responses and the Qwen2.5-Math / DART-Math evaluation of an instruct model both
 * ask the same way: one user turn holding the question, a newline and the instruction
 * "Please reason step by step, and put your final answer within \boxed{}.", rendered in the
 * model's own chat template. How the turn reaches the model is chosen once here:
 *   - template spec NULL: as chat messages; the backend renders them (the local engine with
 *     the model's template, a server with its own), so the same code serves both;
 *   - "none": plain text "QUESTION\nINSTRUCTION\n" (models without a chat format);
 *   - anything sq_chat_template_open reads (a built-in name, a folder, a Jinja file): rendered
 *     here and sent as a raw prompt, with the template's end-of-turn strings as stops.
 * An instruction of NULL means the default above; "" means none (the tiny world's solver was
 * trained on bare questions).
 *
 * A response counts as answered, as in the paper, only when it ends in a final answer the
 * grader reads from "\boxed{...}" or from "The answer is ..." / "final answer is ...";
 * a last number in prose is not enough.
 *
 * Ownership: sq_cot_prompt owns the template it opened; prompts built by sq_cot_prompt_fill
 * live in the caller's arena.
 */
#ifndef SCALEQUEST_COT_H
#define SCALEQUEST_COT_H

#include "scalequest/backend.h"
#include "scalequest/base.h"

#define SQ_COT_INSTRUCTION "Please reason step by step, and put your final answer within \\boxed{}."

struct sq_chat_template;

typedef struct sq_cot_prompt {
    const char *instruction;       /* appended after a newline; "" for none */
    struct sq_chat_template *tmpl; /* rendered here when set */
    int plain;                     /* "none": plain text */
    const char *system;            /* optional system turn (NULL: none) */
} sq_cot_prompt;

/* template_spec: NULL, "none", or a chat template spec (see above). instruction: NULL for the
 * default, "" or "none" for none. */
int sq_cot_prompt_open(sq_cot_prompt *p, const char *template_spec, const char *instruction, sq_err *e);
void sq_cot_prompt_close(sq_cot_prompt *p);

/* Fill q->prompt or q->messages for `question` (strings from the arena), and add the
 * template's end-of-turn stop strings to q->params when rendering here (the caller's stops
 * stay first). */
int sq_cot_prompt_fill(const sq_cot_prompt *p, const char *question, sq_gen_request *q, sq_arena *a,
                       sq_err *e);

/* The final answer of a response (malloc'd; caller frees) when it has one by the rule
 * above, else NULL. *how names the rule ("boxed", "answer_is", "final_answer"). */
char *sq_cot_final_answer(const char *response, const char **how);

#endif
