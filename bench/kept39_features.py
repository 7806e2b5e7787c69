"""kept39 (TUNING TOOL): per trusted frame of a pulse-trace replay where the main endpointer's suspicion rose, the
linear filter's bands: g over 3 kHz / under 1 kHz, (linear output - estimate) under 1 kHz, 1-2 kHz-ish, over 3 kHz, and
whether the frame came after the visitor's onset. Run with the code to judge first on the path (PYTHONPATH).

    PYTHONPATH=/tmp/x python bench/kept39_features.py OUT.json TRACE.pkl...
"""
import json
import math
import pickle
import sys

sys.path.insert(0,'bench')
import bench_lobby as bl
import lobby_aec_replay as lr
import numpy as np

from kiosk.audio import echo_cancel as ec
from kiosk.core import endpointing as ep

W=np.hanning(320); F=np.fft.rfftfreq(320,1/16000)
HI=F>=3000; LO=F<1000; MID=(F>=1000)&(F<3000); LO2=F<2000
def feats(mic, lin):
    m=np.fft.rfft(np.frombuffer(mic,np.int16).astype(float)*W); o=np.fft.rfft(np.frombuffer(lin,np.int16).astype(float)*W); e=m-o
    def lv(x,b): return 10*math.log10(float(np.sum(np.abs(x[b])**2))+1e-3)
    def g(b):
        ee=float(np.sum(np.abs(e[b])**2)); return None if ee<=0 else float(np.sum((m[b]*np.conj(e[b])).real))/ee
    return dict(gh=g(HI), glo=g(LO), lin_h=lv(o,HI), est_h=lv(e,HI), mic_h=lv(m,HI), lin_lo=lv(o,LO), est_lo=lv(e,LO), mic_lo=lv(m,LO),
                lin_lo2=lv(o,LO2), est_lo2=lv(e,LO2))
out=[]
for path in sys.argv[2:]:
    trace=pickle.load(open(path,'rb')); room=trace['row']['room']; t0,aud=room['started_mono'],room['audible_s']; frames=trace['aec']
    C={}
    realc=ec.EchoCanceller.process
    def proc(self, frame, at):
        r=realc(self, frame, at)
        from kiosk.audio.echo_level import EchoLevelTap
        if not isinstance(self, EchoLevelTap):
            C['lin']=getattr(self._filter,'linear_output',None); C['mic']=frame; C['L']=self.linear_levels
        return r
    ec.EchoCanceller.process=proc
    realp=ep.Endpointer.process
    rows=[]
    def eproc(self, frame, far=None, *a, **kw):
        s0=self.suspected_speech_ms
        ev=realp(self, frame, far, *a, **kw)
        if self.echo_relearn:
            rows.append((self.echo_cancelled_well, s0, self.suspected_speech_ms, C.get('lin'), C.get('mic'), C.get('L')))
        return ev
    ep.Endpointer.process=eproc
    run=lr.pulse_inputs(trace); got=lr.replay(run, bl.load_bench_config())
    ec.EchoCanceller.process=realc; ep.Endpointer.process=realp
    onset=room.get('onset_s'); on_rel=None if onset is None else onset-aud
    for k,(tr,s0,s1,lin,mic,L) in enumerate(rows):
        if not tr or not lin or s1<=s0 or L is None: continue   # trusted frames where suspicion rose
        tt=frames[min(k,len(frames)-1)]['mono']-t0-aud
        if tt < 0: continue
        d=feats(mic,lin); d.update(trace=path, t=round(tt,3), onset=on_rel, hers=on_rel is not None and tt>=on_rel-0.02, lin=L[0], est=L[1], micdb=L[2], s1=s1)
        out.append(d)
json.dump(out, open(sys.argv[1],'w'))
print(len(out))
