"""Counterfactual for EchoLevelTap.skip (helper tapskip38; tuning tool over bench/pulse_trace.py traces of modes
speex / speex-later run WITHOUT skip): a MicTimeline fed every frame's stamp (what skip gives the raw guard's tap)
against the traced tap's own, at each frame the tap took after frames it skipped while the speaker played; both
measured from the canceller's count-held timeline since the tap's lag settled (ms). Prints each, then per gap
length how many were > 5 ms off.

    python bench/tapskip38_timeline_sim.py /tmp/x/tr/*.pkl
"""
import pickle
import sys

from kiosk.audio.mic_timeline import MicTimeline

out = []
for path in sys.argv[1:]:
    try:
        t = pickle.load(open(path, 'rb'))
    except Exception:
        continue
    if not isinstance(t, dict) or not t.get('aec'):
        continue
    aec = t['aec']
    tap = {round(f['captured'], 6): f for f in t['frames'] if 'captured' in f and 'at' in f}
    sim = MicTimeline(0.02)
    simat = [sim.place(a['captured']) for a in aec]
    d0 = None
    prev_tapped = True
    for k, a in enumerate(aec):
        f = tap.get(round(a['captured'], 6))
        if f is None:
            prev_tapped = False
            continue
        if d0 is None and f['settled']:
            d0 = (f['at'] - a['at'], simat[k] - a['at'])
        if not prev_tapped and d0 is not None and (a['active'] or a['guarded']):
            gap = 0
            j = k - 1
            while j >= 0 and round(aec[j]['captured'], 6) not in tap:
                gap += 1; j -= 1
            em = (f['at'] - a['at'] - d0[0]) * 1000
            es = (simat[k] - a['at'] - d0[1]) * 1000
            out.append((path, t['row']['mix'], gap, round(em, 1), round(es, 1), round((f['at']-f['captured'])*1000,1), round((simat[k]-a['captured'])*1000,1)))
        prev_tapped = True
for o in out: print(o)
for lo, hi in ((1, 6), (7, 10**6)):
    sel = [o for o in out if lo <= o[2] <= hi]
    if sel:
        print(lo, hi, len(sel), 'main |err|>5ms:', sum(abs(o[3]) > 5 for o in sel), 'skip |err|>5ms:', sum(abs(o[4]) > 5 for o in sel),
              'main max', max(abs(o[3]) for o in sel), 'skip max', max(abs(o[4]) for o in sel))
