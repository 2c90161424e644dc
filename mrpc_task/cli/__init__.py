"""The `tfm` command line: entry points kept apart from the library they drive.

Dependencies point one way: `mrpc_task` (library) <- `registry` (registrations) <-
`mrpc_task.cli`. Each command is a module with `define_flags()` and `main(argv)`;
`main.main` (the console script `tfm`) dispatches and is the one place errors become
`tfm COMMAND: error: ...`.
"""
