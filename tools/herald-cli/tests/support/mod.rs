//! Running the `herald` binary against a local stack, for the CLI's tests.

use std::process::Command;

use local_stack::Stack;

/// Runs `herald args...` with the stack's environment: exit code, stdout, stderr.
pub fn herald(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    herald_with(stack, args, &[])
}

/// [`herald`] without the environment variables named in `without`.
pub fn herald_with(stack: &Stack, args: &[&str], without: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_clear()
        .envs(
            stack
                .env
                .iter()
                .filter(|(name, _)| !without.contains(&name.as_str())),
        )
        .output()
        .expect("the CLI runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
