"""The fault-injection matrix, with more tries than the test suite: prints tries, faults survived, data lost.

Every try runs real camlytics commands in subprocesses: against the simulated camera with fault injection
(refusing connections, answering 401 or 503, stalling, truncating, sending HTML, dropping the connection),
with mosquitto stopped and restarted under `run --mqtt`, with writes failing past RLIMIT_FSIZE (as on a full
disk), and killed with SIGKILL at random instants of collect, annotate (label writes over its HTTP API) and
train. After each: the store's integrity, every record's image against its hash, acknowledged labels,
orphans. The rules are in tests/robustness/faultlib.py.

    .venv/bin/python bench/faults.py                    # 3 tries per camera fault, 10 kills each (~10 min)
    .venv/bin/python bench/faults.py --tries 1 --kills 3 --only camera,broker
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fault scenarios live with the tests

from tests.robustness import faultlib  # noqa: E402

GROUPS = ("camera", "broker", "disk", "collect", "annotate", "train")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=3, help="tries per camera fault, broker and disk row")
    parser.add_argument("--kills", type=int, default=10, help="kill -9 tries for collect and annotate")
    parser.add_argument("--train-kills", type=int, default=4, help="kill -9 tries for train (each ~ a train run)")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups of {', '.join(GROUPS)}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    only = set(args.only.split(","))
    rows: list[faultlib.Outcome] = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="camlytics-faults-") as tmp:
        work = Path(tmp)
        steps = [
            ("camera", lambda: faultlib.camera_faults(work / "camera", args.tries)),
            ("broker", lambda: [faultlib.broker_down_and_back(work / "broker", args.tries)]),
            ("disk", lambda: [faultlib.disk_full(work / "disk", args.tries * 2, args.seed)]),
            ("collect", lambda: [faultlib.kill_collect(work / "collect", args.kills, args.seed)]),
            ("annotate", lambda: [faultlib.kill_annotate(work / "annotate", args.kills, args.seed)]),
            ("train", lambda: [faultlib.kill_train(work / "train", args.train_kills, args.seed)]),
        ]
        for name, step in steps:
            if name in only:
                t0 = time.monotonic()
                done = step()
                rows += done
                print(f"{name}: {sum(r.tries for r in done)} tries in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    print(faultlib.table(rows))
    print(f"\n{time.monotonic() - start:.0f} s in all; goal: every fault survived, 0 data lost")
    notes = [f"- {r.fault} / {r.command}: {note}" for r in rows for note in r.notes]
    if notes:
        print("\nnotes:\n" + "\n".join(notes))
    return 0 if all(r.survived == r.tries and not r.lost for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
