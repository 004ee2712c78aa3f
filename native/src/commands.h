/* Subcommands of tsfig-runtime; see native/PROTOCOL.md. Each returns the process exit code. */
#ifndef TSFIG_COMMANDS_H
#define TSFIG_COMMANDS_H

int tsfig_cmd_start(int argc, char **argv);
int tsfig_cmd_exec(int argc, char **argv);
int tsfig_cmd_unpack(int argc, char **argv);
int tsfig_cmd_netns(int argc, char **argv);
int tsfig_cmd_spawner(int argc, char **argv);
int tsfig_cmd_shift(int argc, char **argv);
int tsfig_cmd_idmap_probe(int argc, char **argv);

/* argv[0] of tsfig-runtime: the spawner runs requests for this path from its own sealed copy. */
extern const char *tsfig_self_path;

#endif
