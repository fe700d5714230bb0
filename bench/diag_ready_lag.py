# ruff: noqa: E501, E701, E702, E741, B007
"""Diagnostic (not part of the run): where the time goes between the new instance being ready and
`kaudit enable` returning. Wraps kaudit's await script with timestamped progress lines and its Python
steps with timestamps; prints them relative to the simulator's ready_at.

    sudo .venv/bin/python -m bench.diag_ready_lag      (NOGUARD=1 / NOLOCK=1 / SLEEPEXIT=1 to vary)
"""
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.nodes import nodes

WRAP = r'''
import sys
from installer.scripts import load as scripts
_patched = scripts.AWAIT.text.replace('  if [ -n "$found" ]; then\n    r=$(probe "$url" "$kc")', '  echo "progress=iter $(date +%s.%N) scanned $found"\n  if [ -n "$found" ]; then\n    r=$(probe "$url" "$kc"); echo "progress=iter $(date +%s.%N) probed $r"').replace('while :; do\n', 'while :; do\n  echo "progress=iter $(date +%s.%N) begin"\n')
assert _patched.count("iter") == 3, _patched
scripts.AWAIT.__dict__["text"] = _patched  # the cached text: every bind() now carries the timestamps
import os
if os.environ.get("NOGUARD"):
    scripts.APPLY.__dict__["text"] = scripts.APPLY.text.replace('start_guard "$state"', 'true || start_guard "$state"'); assert "true || start_guard" in scripts.APPLY.text
if os.environ.get("NOLOCK"):
    from installer.change import phases as _c
    _c.NodeChange.take_lock = lambda self: None
if os.environ.get("SLEEPEXIT"): scripts.AWAIT.__dict__["text"] = scripts.AWAIT.text.replace("${r#* }\"; exit 0", "${r#* }\"; echo \"progress=iter $(date +%s.%N) after-echo\"; sleep 1.5; exit 0"); assert "after-echo" in scripts.AWAIT.text
import time
from installer import transport as T
orl, ocl = T._StreamSession.readline, T._StreamSession.close
def rl(self):
    x = orl(self); print("TS readline", time.time(), x[:80], file=sys.stderr, flush=True); return x
def cl(self):
    print("TS close0", time.time(), file=sys.stderr, flush=True); ocl(self); print("TS close1", time.time(), file=sys.stderr, flush=True)
T._StreamSession.readline, T._StreamSession.close = rl, cl
from installer.change import phases as change
for name in ("await_instance", "confirm_change", "take_lock"):
    def mk(orig, name):
        def w(self, *a, **k):
            print("TS >" + name, time.time(), file=sys.stderr, flush=True)
            try: return orig(self, *a, **k)
            finally: print("TS <" + name, time.time(), file=sys.stderr, flush=True)
        return w
    setattr(change.NodeChange, name, mk(getattr(change.NodeChange, name), name))
from installer.cli import main
sys.argv = ["kaudit"] + sys.argv[1:]
main()
'''
for rep in range(2):
    with nodes(Path(tempfile.mkdtemp()), 1, linger=0.0, restart_delay=0.0) as (node,):
        time.sleep(0.3)
        p = subprocess.Popen([".venv/bin/python", "-c", WRAP, "enable", node.target("kadmin"),"--profile","minimal","--yes","--output","json","-i",str(node.key_path),"--known-hosts",str(node.known_hosts),"--timeout","60"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "KAUDIT_PROGRESS": "1"})
        lines = [(time.time(), l.strip()) for l in p.stderr]
        p.wait(); end = time.time()
        inst = [i for i in node.instances() if i["ready_at"] and any(a.startswith("--audit-policy") for a in i["argv"])][-1]
        r = inst["ready_at"]
        for t, l in lines:
            parts = l.split()
            if len(parts) > 2 and parts[1] == "iter": print(f"recv {t - r:+.3f} node {float(parts[2]) - r:+.3f} {' '.join(parts[3:])}")
            elif l.startswith("TS ") and len(parts) > 4 and parts[3].startswith("ready="): print(f"py {float(parts[2]) - r:+.3f} READY node date {float(parts[5]) - r:+.3f}")
            elif l.startswith("TS "): print(f"py {float(parts[2]) - r:+.3f} {parts[1]} {' '.join(parts[3:])[:50]}")
            else: print(f"{t - r:+.3f} {l[:100]}")
        print("exit", f"{end - r:+.3f}")
