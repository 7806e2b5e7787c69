"""kept39 (TUNING TOOL): two bench/kept39_replay.py outputs compared: runs with self-pauses, first pauses removed or
new, barge-in delays moved, -12 dB p95 / mean / missed.

    python bench/kept39_compare.py MAIN.json MINE.json
"""
import json
import sys

a=json.load(open(sys.argv[1]))['rows']; b=json.load(open(sys.argv[2]))['rows']
print(json.load(open(sys.argv[1]))['kiosk'], 'vs', json.load(open(sys.argv[2]))['kiosk'])
pa=pb=0; ra=rb=0; moved=[]; newp=[]; gone=[]
d12a=[];d12b=[]
for x,y in zip(a,b):
    assert x['path']==y['path']
    sa=x['self_pauses_s']; sb=y['self_pauses_s']
    pa+=len(sa); pb+=len(sb); ra+=bool(sa); rb+=bool(sb)
    if x['self_rel_later_s'][:1]!=y['self_rel_later_s'][:1]:
        (gone if x['self_rel_later_s'] and (not y['self_rel_later_s'] or y['self_rel_later_s'][0]>x['self_rel_later_s'][0]) else newp).append((x['path'].split('/tmp/')[1][:70], x['self_rel_later_s'], y['self_rel_later_s'], x['echo_db']))
    if x['kind']=='bargein':
        if x['speaker_silent_ms']!=y['speaker_silent_ms']: moved.append((x['path'].split('/tmp/')[1][:70], x['echo_db'], x['speaker_silent_ms'], y['speaker_silent_ms']))
        if x['echo_db']==-12.0: d12a.append(x['speaker_silent_ms']); d12b.append(y['speaker_silent_ms'])
print('runs with self-pauses A', ra, 'B', rb, '; events', pa, pb)
print('first pause removed/later:', len(gone)); [print('  ',g) for g in gone]
print('first pause new/earlier:', len(newp)); [print('  ',g) for g in newp]
print('barge-in delays moved:', len(moved)); [print('  ',m) for m in moved]
import math


def p95(v):
    v=sorted(x if x is not None else 1e9 for x in v); return v[min(len(v)-1, math.ceil(0.95*len(v))-1)]
print('-12 dB n', len(d12a), 'p95', p95(d12a), p95(d12b), 'mean', sum(x for x in d12a if x)/len([x for x in d12a if x]), sum(x for x in d12b if x)/len([x for x in d12b if x]), 'missed', sum(x is None for x in d12a), sum(x is None for x in d12b))
