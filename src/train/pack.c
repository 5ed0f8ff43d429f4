/* Packing: whole examples laid end to end in rows of T tokens. Each token records where its
 * example starts (attention stops there) and its own position (restarting at 0), so a packed
 * row computes exactly what the examples would compute alone. */
#include <stdlib.h>
#include <string.h>

#include "scalequest/train.h"

int sq_packer_init(sq_packer *p, int B, int T, int pack, sq_err *e) {
    memset(p, 0, sizeof *p);
    p->B = B, p->T = T, p->pack = pack;
    size_t n = (size_t)B * T;
    p->tokens = malloc(n * sizeof *p->tokens);
    p->targets = malloc(n * sizeof *p->targets);
    p->pos = malloc(n * sizeof *p->pos);
    p->seg_start = malloc(n * sizeof *p->seg_start);
    p->weight = malloc(n * sizeof *p->weight);
    p->last_row = malloc(n * sizeof *p->last_row);
    p->ex_index = malloc(n * sizeof *p->ex_index);
    if (!p->tokens || !p->targets || !p->pos || !p->seg_start || !p->weight || !p->last_row || !p->ex_index) {
        sq_packer_free(p);
        return sq_fail(e, SQ_ENOMEM, "train: out of memory for a batch of %d x %d", B, T);
    }
    return 0;
}

void sq_packer_free(sq_packer *p) {
    free(p->tokens);
    free(p->targets);
    free(p->pos);
    free(p->seg_start);
    free(p->weight);
    free(p->last_row);
    free(p->ex_index);
    memset(p, 0, sizeof *p);
}

int sq_packer_fill(sq_packer *p, const sq_texample *ex, int first, int n, sq_tbatch *b) {
    int T = p->T, used = 0;
    p->n_in_batch = 0;
    p->n_targets = 0;
    int k = first;
    for (int row = 0; row < p->B; row++) {
        int col = 0;
        while (k < n) {
            int len = ex[k].n < T ? ex[k].n : T;
            if (len <= 0) {
                k++;
                continue;
            }
            if (col > 0 && (!p->pack || col + len > T)) break;
            size_t base = (size_t)row * T;
            for (int i = 0; i < len; i++) {
                size_t r = base + col + i;
                p->tokens[r] = ex[k].ids[i];
                p->pos[r] = i;
                p->seg_start[r] = col;
                int has_next = i + 1 < len && ex[k].loss[i + 1];
                p->targets[r] = has_next ? ex[k].ids[i + 1] : -1;
                p->weight[r] = has_next ? 1.0f : 0.0f;
                p->n_targets += has_next;
            }
            p->last_row[p->n_in_batch] = (int)base + col + len - 1;
            p->ex_index[p->n_in_batch] = k;
            p->n_in_batch++;
            col += len;
            k++;
            used++;
            if (!p->pack) break;
        }
        /* Padding attends only to itself and predicts nothing. */
        for (int c = col; c < T; c++) {
            size_t r = (size_t)row * T + c;
            p->tokens[r] = 0;
            p->pos[r] = 0;
            p->seg_start[r] = c;
            p->targets[r] = -1;
            p->weight[r] = 0;
        }
    }
    b->B = p->B, b->T = T;
    b->tokens = p->tokens, b->targets = p->targets, b->pos = p->pos, b->seg_start = p->seg_start;
    return used;
}
