//! Whether a process is still running: what decides that a run's leftovers
//! (its scratch dir, its temp files) are debris, since their names carry
//! their writer's pid.

/// True when process `pid` lives: it has an entry in `/proc` and is not a
/// zombie (a zombie has exited; only its parent has not reaped it yet).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // The state follows the command name, which is in parentheses and
        // may itself hold spaces or parentheses.
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_lives_and_an_unused_pid_does_not() {
        assert!(process_alive(std::process::id()));
        // Above any pid_max Linux allows.
        assert!(!process_alive(u32::MAX));
    }
}
