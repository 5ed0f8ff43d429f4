/* The tiny world's vocabulary, shared by its generator and its parser. */
#ifndef SQ_PIPELINE_WORLD_WORDS_H
#define SQ_PIPELINE_WORLD_WORDS_H

static const char *const sq_world_names[] = {"Mia",  "Emma", "Olivia", "Ava",   "Sofia", "Lily", "Zoe",
                                             "Nora", "Ella", "Grace",  "Liam",  "Noah",  "Ethan", "Lucas",
                                             "Mason", "Leo", "Jack",   "Owen",  "Ben",   "Sam"};
#define SQ_WORLD_N_NAMES 20
#define SQ_WORLD_N_FEMALE 10 /* the first ten names are "she", the rest "he" */

static const char *const sq_world_items[] = {"apples",  "marbles", "stickers", "pencils", "cookies", "coins",
                                             "books",   "cards",   "shells",   "stamps",  "candies", "balloons",
                                             "buttons", "crayons", "eggs",     "oranges"};
#define SQ_WORLD_N_ITEMS 16

#endif
