"""Sums the peak heap snapshot of a valgrind massif profile by the innermost sluice frame of each
allocation, to see what a waiting stream keeps:

    valgrind --tool=massif --threshold=0.1 --depth=60 --massif-out-file=massif.out build/sluice serve ...
    (open N slow streams with build/bench/loadgen, then stop the server)
    python3 bench/massif_by_frame.py massif.out [PATTERN]
"""
import sys,re,collections

lines=open(sys.argv[1]).read().split('\n')
pat=re.compile(sys.argv[2] if len(sys.argv)>2 else r'sluice::')
# find peak snapshot
i=0; snaps=[]
while i<len(lines):
    if lines[i].startswith('snapshot='):
        j=i; 
        while not lines[j].startswith('heap_tree='): j+=1
        kind=lines[j].split('=')[1]; total=int(lines[i+3].split('=')[1])
        snaps.append((i,j,kind,total))
    i+=1
peak=[s for s in snaps if s[2]=='peak']
if not peak: peak=[max([s for s in snaps if s[2]=='detailed'],key=lambda s:s[3])]
_,j,_,total=peak[0]
print('heap at peak',total)
agg=collections.Counter()
stack=[]
k=j+1
while k<len(lines) and lines[k].startswith(' ') or (k<len(lines) and lines[k].startswith('n')):
    l=lines[k]
    if l.startswith('snapshot') or l.startswith('#'): break
    ind=len(l)-len(l.lstrip(' '))
    m=re.match(r'\s*n(\d+): (\d+) (.*)',l)
    if not m: break
    nch,b,desc=int(m.group(1)),int(m.group(2)),m.group(3)
    stack=stack[:ind]; stack.append(desc)
    if nch==0:
        lab=None
        for d in stack[1:]:
            if pat.search(d):
                mm=re.search(r'(sluice::[A-Za-z_:<>0-9]+)',d); lab=(mm.group(1) if mm else d[:80]); 
                fl=re.search(r'\(([a-z_]+\.(?:cpp|h)):(\d+)\)',d); lab+= ' '+(fl.group(0) if fl else '')
                break
        if lab is None: lab='other: '+(stack[1][:120] if len(stack)>1 else stack[0][:100])
        agg[lab]+=b
    k+=1
for lab,b in agg.most_common(40): print(f'{b:>12,} {b*100/total:5.1f}% {lab}')
