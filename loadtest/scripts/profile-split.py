"""Splits `perf script -F comm,tid,ip,sym,dso` output by task (rows) and kind of work
(columns), scaled to CPU µs per delivered message; prints a Markdown table.

    profile-split.py STACKS MICROSECONDS_PER_MESSAGE [THREAD_NAME_PREFIX]

The row is the task a sample ran in, read from the user frames of its stack; the column
is what the top of the stack was doing (a system call by its kind, else the top frame's
crate or function). Stacks that DWARF unwinding could not follow to their task land in
"scheduler or unwound"."""
import collections
import re
import sys


def read_samples(path, thread_prefix):
    samples, frames, comm = [], None, ""
    for line in open(path, errors="replace"):
        if line.startswith("\t"):
            parts = line.strip().split(" ", 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
            continue
        if frames:
            samples.append((comm, frames))
        frames = []
        if line.strip():
            comm = line.split()[0]
    if frames:
        samples.append((comm, frames))
    return [f for c, f in samples if not thread_prefix or c.startswith(thread_prefix)]


def task_of(frames):
    user = " ".join(f for f in frames if "kernel.kallsyms" not in f)
    if "write_loop" in user:
        return "writer tasks"
    if "ConversationTask" in user:
        return "conversation tasks"
    if any(k in user for k in ("read_loop", "transport::run", "on_upgrade", "Session::handle")):
        return "reader tasks (and sessions)"
    if "store::feed" in user or "conversation::live" in user:
        return "live feed"
    if "floor::" in user:
        return "relay tasks"
    if "redis::" in user:
        return "Redis client connection"
    return "scheduler or unwound"


KINDS = [
    (r"sys_sendto|sys_sendmsg|sys_writev|sys_write\b", "kernel: send"),
    (r"sys_recvfrom|sys_recvmsg|sys_read\b", "kernel: receive"),
    (r"epoll|futex|schedule|nanosleep", "kernel: wake-ups"),
]
TOP = [
    (r"\bmi_|_mi_|malloc|\bfree\b|__rust_alloc|__rust_dealloc|realloc", "allocation"),
    (r"memmove|memcpy|memcmp|memset|memchr", "memcpy"),
    (r"serde_json::ser|format_escaped|serialize|itoa", "JSON encode"),
    (r"serde_json::de|serde_json::read|deserialize", "JSON decode"),
    (r"tungstenite", "WebSocket framing"),
    (r"^<?redis::", "Redis protocol"),
    (r"tokio|futures|mio::", "tokio"),
    (r"sip::|hash|dashmap", "hashing, maps"),
    (r"tracing|prometheus", "tracing, metrics"),
    (r"switchboard|floor", "own code"),
]


def kind_of(frames):
    if "kernel.kallsyms" in frames[0]:
        for frame in frames:
            if "kernel.kallsyms" not in frame:
                break
            for pattern, kind in KINDS:
                if re.search(pattern, frame):
                    return kind
        return "kernel: other"
    symbol = frames[0].rsplit(" (", 1)[0]  # without the binary's path
    for pattern, kind in TOP:
        if re.search(pattern, symbol):
            return kind
    return "other"


def main():
    samples = read_samples(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else None)
    scale = float(sys.argv[2]) / max(len(samples), 1)
    by_task, by_kind, cells = collections.Counter(), collections.Counter(), collections.Counter()
    for frames in samples:
        task, kind = task_of(frames), kind_of(frames)
        by_task[task] += 1
        by_kind[kind] += 1
        cells[task, kind] += 1
    kinds = [k for k, _ in by_kind.most_common()]
    print(f"{len(samples)} samples; µs per delivered message\n")
    print("| task | all | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 2) + "|")
    for task, count in by_task.most_common():
        row = " | ".join(f"{cells[task, k] * scale:.1f}" for k in kinds)
        print(f"| {task} | {count * scale:.1f} | {row} |")
    print(f"| all | {len(samples) * scale:.1f} | "
          + " | ".join(f"{by_kind[k] * scale:.1f}" for k in kinds) + " |")


if __name__ == "__main__":
    main()
