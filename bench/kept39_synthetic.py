"""kept39 (frame time, synthetic): two answers through EchoFrontEnd with real SpeexDSP (tests/audio/test_aec_distrust.py's
rig), the second stamped ERR s late: its self-pauses. MAIN=1 MAINV=x sets RELINE_MIN_MS (main 0.125).

    ERR=0.0000625 MAIN=1 python bench/kept39_synthetic.py
"""
import os
import sys

sys.path.insert(0,'.')
import numpy as np

from kiosk.audio import echo_cancel as ec
from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.vad import webrtc_voice_detector
from kiosk.config import load_config
from kiosk.core.endpointing import Endpointer
from kiosk.hearing import EchoFrontEnd
from tests.audio.test_echo_cancel import FRAME, RATE, i16, room, speech

if os.environ.get('MAIN'): ec.RELINE_MIN_MS = float(os.environ.get('MAINV', 0.125))

err_s = float(os.environ.get('ERR', 1/16000)); echo_db=float(os.environ.get('EDB',-12)); seed=int(os.environ.get('SEED',3))
LATENCY_S=0.05
cfg = load_config('[audio]\necho_cancel = "speex"\n', {}, require_key=False)
buffer = PlaybackBuffer(RATE); now=[0.0]; error=[0.0]
endpointer = Endpointer(webrtc_voice_detector(cfg.vad.aggressiveness, RATE, 20), cfg.vad, 20)
front = EchoFrontEnd(cfg, buffer, lambda: now[0], lambda: LATENCY_S + error[0], endpointer)
total_s=float(os.environ.get('TOTAL',13.0))
heard=np.zeros(int(total_s*RATE)+RATE)
off=float(os.environ.get('OFF',0.0))
answer=speech(30.0)
a0=int(off*RATE)
stretches=[(0.5,5.5,0.0,0),(7.0,12.0,err_s,a0)]
rir=room(seed,echo_db)
noise=np.random.default_rng(5).standard_normal(heard.size)*10**(-65/20)*32768
pauses=[]; held=False
for k in range(int(total_s/0.02)):
    now[0]=t=k*0.02
    for b,e,er,st in stretches:
        if abs(t-b)<1e-9:
            buffer.write(i16(answer[st:st+int((e-b)*RATE)]).tobytes(),"answer"); error[0]=er
    pcm=buffer.read(FRAME); at=round((t+LATENCY_S)*RATE); heard[at:at+FRAME]=np.frombuffer(pcm,np.int16)
    j=k-4
    if j<0: continue
    lo=j*FRAME; window=heard[max(0,lo-rir.size+1):lo+FRAME]
    echo=np.convolve(window,rir)[window.size-FRAME:window.size]
    frame=i16(echo+noise[lo:lo+FRAME]).tobytes()
    cleaned,_=front.clean(frame,j*0.02); front.judge(cleaned,None)
    c=front.echo_canceller; s=front.suspected_speech_ms
    p = s>=cfg.vad.barge_in_pause_ms and not buffer.is_idle
    if p and not held: pauses.append(round(j*0.02,2))
    held=p
    if os.environ.get('V') and 6.9<j*0.02<9.5:
        L=c.linear_levels
        print(round(j*0.02,2), 'rawS', front.raw_guard.suspected_speech_ms if front.raw_guard else None, 'mainS', endpointer.suspected_speech_ms, endpointer.echo_cancelled_well, c.relines, c.realignments, c._delay.settled_ms, L and tuple(round(x,1) for x in L), s)
print('MAIN' if os.environ.get('MAIN') else 'MINE', 'err', err_s, 'pauses', pauses, 'relines', front.echo_canceller.relines, 'realign', front.echo_canceller.realignments)
