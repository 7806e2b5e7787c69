"""kept39 (TUNING TOOL): an oracle: the traced later answer replayed with the reference shifted by a fractional number of
samples (windowed sinc) from the lag re-measure's settle on (main's canceller otherwise): the filter's cancellation
over 4 kHz and under 1 kHz (median over 0.55-1.3 s). Shows how much aligning the kept filter after the settle can win back.

    python bench/kept39_oracle.py TRACE.pkl SHIFT...
"""
import math
import pickle
import statistics
import sys

sys.path.insert(0,'bench'); sys.path.insert(0,'.')
import lobby_aec_replay as lr
import numpy as np

from kiosk.audio import echo_cancel as ec

ec.RELINE_MIN_MS = 0.125  # main's canceller; the oracle shift applied from the settle on
sys.argv.pop(0); path=sys.argv.pop(0)
trace=pickle.load(open(path,'rb')); room=trace['row']['room']; t0,aud=room['started_mono'],room['audible_s']; frames=trace['aec']
def frac_shift(x, d):
    # delay x by d samples (fractional), windowed sinc, same length
    if d == 0: return x
    K=16; n=np.arange(-K,K+1); h=np.sinc(n-d)*np.hanning(2*K+3)[1:-1]; h/=h.sum()
    return np.convolve(x, h, mode='same')
def band(pcm):
    x=np.frombuffer(pcm,np.int16).astype(float); S=np.abs(np.fft.rfft(x*np.hanning(x.size)))**2; f=np.fft.rfftfreq(x.size,1/16000)
    return 10*math.log10(S[f>=4000].sum()+1e-9), 10*math.log10(S[f<1000].sum()+1e-9)
res={}
for d in [float(x) for x in sys.argv] or [0.0]:
    TR=lr.TracedReference(frames)
    real_take=TR.take_marked
    state={'on':False}
    def take(start_s, n, TR=TR, real_take=real_take):
        if not state['on']: return real_take(start_s, n)
        pad=32
        pcm,_=real_take(start_s - pad/16000, n+2*pad)
        if pcm is None: return None, False
        x=np.frombuffer(pcm,np.int16).astype(float)
        y=frac_shift(x, d)[pad:pad+n]
        return np.clip(np.rint(y),-32768,32767).astype(np.int16).tobytes(), False
    # TracedReference.take_marked advances its frame counter per call: call real once per frame
    k_calls={'k':0}
    def take2(start_s, n):
        if not state['on']: return real_take(start_s, n)
        fr=TR._frames[min(TR._k,len(TR._frames)-1)]; TR._k+=1; TR.restamps=fr.get('restamps',0)
        if fr['ref'] is None: return None, False
        pad=32; i=round((start_s)*16000)-TR._lo - pad
        out=np.zeros(n+2*pad)
        lo,hi=max(0,i),min(TR._pcm.size,i+n+2*pad)
        if hi>lo: out[lo-i:hi-i]=TR._pcm[lo:hi]
        y=frac_shift(out, d)[pad:pad+n]
        return np.clip(np.rint(y),-32768,32767).astype(np.int16).tobytes(), False
    TR.take_marked=take2
    c=ec.EchoCanceller(TR,20); c.recheck=True
    run=lr.pulse_inputs(trace); k=-1; hf=[]; lf=[]
    for e in run['inputs']:
        if e[0]!='mic': continue
        k+=1; c.process(e[1],e[2]); tt=frames[min(k,len(frames)-1)]['mono']-t0-aud
        if tt>=0 and c._delay is not None and c._delay.settled and not state['on'] and tt<1.5:
            state['on']=True; st=(round(tt,3), c._delay.settled_ms)
        lin=getattr(c._filter,'linear_output',None)
        if state['on'] and 0.55<=tt<=1.3 and lin:
            m=band(e[1]); o=band(lin)
            if m[0]>=75: hf.append(m[0]-o[0])
            if m[1]>=75: lf.append(m[1]-o[1])
    res[d]=(st, round(statistics.median(hf),1) if hf else None, round(statistics.median(lf),1) if lf else None)
    print(Path:=path.split('/')[-2], 'shift', d, 'settle', st, 'HF med', res[d][1], 'LF med', res[d][2], flush=True)
