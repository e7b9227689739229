/*
 * bs_query.h - `bitscout query`: read the results database and print it for people or tools.
 *
 *   bitscout query campaigns|agents|evals|pareto|progress|sensitivity [--db FILE]
 *                  [--campaign NAME] [--format table|csv|json]
 *
 * The database is opened read-only (it may be in use by a running search: WAL mode means the
 * query never blocks it). Output goes to stdout; errors go to stderr and name what is wrong.
 */
#ifndef BS_QUERY_H
#define BS_QUERY_H

/* argv[0] is "query". Returns the process exit code: 0 success, 2 usage error (unknown
 * subcommand, option or format; the usage is printed on stderr), 1 any other error (missing
 * database, unknown campaign, SQLite error). Never exits by itself. */
int bs_query_main(int argc, char **argv);

#endif
