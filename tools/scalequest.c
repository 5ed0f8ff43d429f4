/* scalequest: dispatch to a command, or print the top-level help. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* build/gen/commands.inc holds X(ident) for every SQ_COMMAND in tools/cmd_*.c. */
#define X(ident) extern const sq_command sq_command_##ident;
#include "commands.inc"
#undef X

static const sq_command *const commands[] = {
#define X(ident) &sq_command_##ident,
#include "commands.inc"
#undef X
};

static void print_help(void) {
    printf("scalequest %s — synthesise math reasoning data with the ScaleQuest method\n\n"
           "Usage: scalequest <command> [options]\n       scalequest <command> --help\n\nCommands:\n",
           SQ_VERSION);
    for (size_t i = 0; i < SQ_ARRAY_LEN(commands); i++)
        printf("  %-18s %s\n", commands[i]->name, commands[i]->summary);
    printf("\nCommon options: --threads N, --seed N, --quiet, --log-level L, --help, --version\n");
}

int main(int argc, char **argv) {
    sq_threads_default_wait_policy(argv);
    sq_log_init_from_env();
    if (argc < 2) {
        print_help();
        return SQ_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help();
        return SQ_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("scalequest %s\n", SQ_VERSION);
        return SQ_EXIT_OK;
    }
    for (size_t i = 0; i < SQ_ARRAY_LEN(commands); i++)
        if (!strcmp(argv[1], commands[i]->name)) return commands[i]->main(argc - 1, argv + 1);
    fprintf(stderr, "scalequest: unknown command '%s'\nTry 'scalequest --help'.\n", argv[1]);
    return SQ_EXIT_USAGE;
}
