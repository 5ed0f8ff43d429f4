/* The paper's four prompts (Appendix B, Figures 9-12), word for word and line for line as the
 * paper prints them; the placeholder word the paper prints where the question goes
 * ("problem", "Problem", "Input") is where head ends and tail begins. Two things the printed
 * page shows are not part of the prompt: the single space that opens every wrapped line (a
 * line-continuation mark of the figure boxes) and the doubled braces of Figure 12, which are
 * the escape of a Python format string (the model sees one brace). Quotes stay as printed,
 * curly ones included. tests/test_judge.c compares these texts with the paper's. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/judge.h"

static const char FIG9_HEAD[] =
    "Please act as a professional math teacher.\n"
    "Your goal is to create high quality math word problems to help students learn math.\n"
    "You will be given a math question. Please optimize the Given Question and follow the instructions.\n"
    "To achieve the goal, please follow the steps:\n"
    "# Please check that the given question is a math question and write detailed solution to the Given "
    "Question.\n"
    "# Based on the problem-solving process, double check the question is solvable.\n"
    "# If you feel that the given question is not a meaningful math question, rewrite one that makes sense to "
    "you. Otherwise, modify the Given question according to your checking comment to ensure it is solvable and "
    "of high quality.\n"
    "# If the question can be solved with just a few simple thinking processes, you can rewrite it to "
    "explicitly request multiple-step reasoning.\n"
    "\n"
    "You have five principles to do this:\n"
    "# Ensure the optimized question only asks for one thing, be reasonable and solvable, be based on the Given "
    "Question (if possible), and can be answered with only a number (float or integer). For example, DO NOT ask, "
    "\u2018what is the amount of A, B and C?\u2019.\n"
    "# Ensure the optimized question is in line with common sense of life. For example, the amount someone has "
    "or pays must be a positive number, and the number of people must be an integer.\n"
    "# Ensure your student can answer the optimized question without the given question. If you want to use "
    "some numbers, conditions or background in the given question, please restate them to ensure no information "
    "is omitted in your optimized question.\n"
    "# Please DO NOT include solution in your question.\n"
    "\n"
    "Given Question: ";

static const char FIG9_TAIL[] =
    "\n"
    "\n"
    "Your output should be in the following format:\n"
    "CREATED QUESTION: [your created question]\n"
    "VERIFICATION AND MODIFICATION: [solve the question step-by-step and modify it to follow all principles]\n"
    "FINAL QUESTION: [your final created question]";

static const char FIG10_HEAD[] =
    "You are an Math Problem Rewriter that rewrites the given #Problem# into a more complex version. Please "
    "follow the steps below to rewrite the given \"#Problem#\" into a more complex version.\n"
    "\n"
    "Step 1: Please read the \"#Problem#\" carefully and list all the possible methods to make this problem more "
    "complex (to make it a bit harder for well-known AI assistants such as ChatGPT and GPT4 to handle). Note that "
    "the problem itself might be erroneous, and you need to first correct the errors within it.\n"
    "Step 2: Please create a comprehensive plan based on the #Methods List# generated in Step 1 to make the "
    "#Problem# more complex. The plan should include several methods from the #Methods List#.\n"
    "Step 3: Please execute the plan step by step and provide the #Rewritten Problem#. #Rewritten Problem# can "
    "only add 10 to 20 words into the \"#Problem#\".\n"
    "Step 4: Please carefully review the #Rewritten Problem# and identify any unreasonable parts. Ensure that "
    "the #Rewritten Problem# is only a more complex version of the #Problem#. Just provide the #Finally "
    "Rewritten Problem# without any explanation and step-by-step reasoning guidance.\n"
    "\n"
    "Please reply strictly in the following format:\n"
    "\n"
    "Step 1 #Methods List#:\n"
    "\n"
    "Step 2 #Plan#:\n"
    "\n"
    "Step 3 #Rewritten Problem#:\n"
    "\n"
    "Step 4 #Finally Rewritten Problem#:\n"
    "\n"
    "#Problem#: ";

static const char FIG10_TAIL[] = "";

static const char FIG11_HEAD[] =
    "Please act as a professional math teacher.\n"
    "\n"
    "Your goal is to determine if the given problem is a valuable math problem. You need to consider two "
    "aspects:\n"
    "\n"
    "1. The given problem is a math problem.\n"
    "2. The given math problem can be solved based on the conditions provided in the problem (You can first try "
    "to solve it and then judge its solvability).\n"
    "\n"
    "Please reason step by step and conclude with either 'Yes' or 'No'.\n"
    "\n"
    "Given Problem: ";

static const char FIG11_TAIL[] = "";

static const char FIG12_HEAD[] =
    "Instruction\n"
    "\n"
    "You first need to identify the given user intent and then label the difficulty level of the user query "
    "based on the content of the user query.\n"
    "\n"
    "User Query\n"
    "\n"
    "```\n"
    "\n";

static const char FIG12_TAIL[] =
    "\n"
    "\n"
    "```\n"
    "\n"
    "Output Format\n"
    "\n"
    "Given the user query, in your output, you first need to identify the user intent and the knowledge needed "
    "to solve the task in the user query.\n"
    "\n"
    "Then, rate the difficulty level of the user query as very easy, easy, medium, hard, or very hard.\n"
    "\n"
    "Now, please output the user intent and difficulty level below in a json format by filling in the "
    "placeholders in []:\n"
    "\n"
    "```\n"
    "\n"
    "{\n"
    "\n"
    "\u201cintent\u201d: \u201cThe user wants to [...]\u201d,\n"
    "\n"
    "\u201cknowledge\u201d: \u201cTo solve this problem, the models need to know [...]\u201d,\n"
    "\n"
    "\u201cdifficulty\u201d: \u201c[very easy/easy/medium/hard/very hard]\u201d\n"
    "\n"
    "}\n"
    "\n"
    "```";

typedef struct tmpl {
    const char *name, *head, *tail;
    size_t head_len, tail_len;
} tmpl;

#define T(name, h, t) {name, h, t, sizeof h - 1, sizeof t - 1}
static const tmpl TEMPLATES[SQ_PROMPT_KINDS] = {
    T("solvability_optimize", FIG9_HEAD, FIG9_TAIL),
    T("difficulty_optimize", FIG10_HEAD, FIG10_TAIL),
    T("solvability_check", FIG11_HEAD, FIG11_TAIL),
    T("difficulty_rate", FIG12_HEAD, FIG12_TAIL),
};
#undef T

static const tmpl *get(sq_prompt_kind k) { return (unsigned)k < SQ_PROMPT_KINDS ? &TEMPLATES[k] : NULL; }

const char *sq_prompt_kind_name(sq_prompt_kind k) { return get(k) ? get(k)->name : "unknown"; }
const char *sq_prompt_head(sq_prompt_kind k) { return get(k) ? get(k)->head : ""; }
const char *sq_prompt_tail(sq_prompt_kind k) { return get(k) ? get(k)->tail : ""; }

size_t sq_prompt_build(sq_prompt_kind k, const char *question, char *out, size_t cap) {
    const tmpl *t = get(k);
    if (!t) {
        if (cap) out[0] = 0;
        return 0;
    }
    if (!question) question = "";
    size_t ql = strlen(question), total = t->head_len + ql + t->tail_len;
    if (!cap) return total;
    const char *parts[3] = {t->head, question, t->tail};
    size_t lens[3] = {t->head_len, ql, t->tail_len}, at = 0;
    for (int i = 0; i < 3 && at + 1 < cap; i++) {
        size_t n = lens[i] < cap - 1 - at ? lens[i] : cap - 1 - at;
        memcpy(out + at, parts[i], n);
        at += n;
    }
    out[at] = 0;
    return total;
}

static char *build_alloc(sq_prompt_kind k, const char *question) {
    size_t n = sq_prompt_build(k, question, NULL, 0);
    char *s = malloc(n + 1);
    if (s) sq_prompt_build(k, question, s, n + 1);
    return s;
}

char *sq_prompt_solvability_optimize(const char *q) { return build_alloc(SQ_PROMPT_SOLVABILITY_OPTIMIZE, q); }
char *sq_prompt_difficulty_optimize(const char *q) { return build_alloc(SQ_PROMPT_DIFFICULTY_OPTIMIZE, q); }
char *sq_prompt_solvability_check(const char *q) { return build_alloc(SQ_PROMPT_SOLVABILITY_CHECK, q); }
char *sq_prompt_difficulty_rate(const char *q) { return build_alloc(SQ_PROMPT_DIFFICULTY_RATE, q); }

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int sq_prompt_identify(const char *p, size_t len, sq_prompt_kind *kind, const char **q, size_t *qlen) {
    if (!p) return 0;
    /* whitespace around the whole prompt (a chat template's) is not part of it */
    while (len && is_space(*p)) p++, len--;
    while (len && is_space(p[len - 1])) len--;
    for (int k = 0; k < SQ_PROMPT_KINDS; k++) {
        const tmpl *t = &TEMPLATES[k];
        /* the head's closing space and the tail's opening newlines may be trimmed away with
         * an empty question */
        size_t hl = t->head_len, tl = t->tail_len;
        const char *tail = t->tail;
        while (hl && is_space(t->head[hl - 1])) hl--;
        while (tl && is_space(*tail)) tail++, tl--;
        if (len < hl + tl || memcmp(p, t->head, hl) != 0) continue;
        if (tl && memcmp(p + len - tl, tail, tl) != 0) continue;
        const char *s = p + hl;
        size_t n = len - hl - tl;
        while (n && is_space(*s)) s++, n--;
        while (n && is_space(s[n - 1])) n--;
        if (kind) *kind = (sq_prompt_kind)k;
        if (q) *q = s;
        if (qlen) *qlen = n;
        return 1;
    }
    return 0;
}
