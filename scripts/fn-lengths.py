#!/usr/bin/env python3
"""Function lengths in src/ outside test modules (issue 19): counts over 100/120/150 lines and the 20 longest.
Usage: scripts/fn-lengths.py [DIR]"""
import re,sys,os
res=[]
for root,_,files in os.walk(sys.argv[1] if len(sys.argv)>1 else 'src'):
    for f in files:
        if not f.endswith('.rs') or f=='tests.rs': continue
        p=os.path.join(root,f)
        L=open(p).read().split('\n')
        # cut at #[cfg(test)] mod
        cut=len(L)
        for i,l in enumerate(L):
            if l.startswith('#[cfg(test)]'):
                cut=i;break
        i=0
        while i<cut:
            m=re.match(r'^(\s*)(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)',L[i])
            if m:
                ind=len(m.group(1)); name=m.group(7)
                # find the line where body opens
                j=i
                while j<cut and not L[j].rstrip().endswith('{') and not L[j].rstrip().endswith(';'):
                    j+=1
                if j<cut and L[j].rstrip().endswith(';'): i=j+1; continue
                k=j+1
                while k<cut and not (L[k].startswith(' '*ind+'}') and len(L[k])-len(L[k].lstrip())==ind):
                    k+=1
                res.append((k-i+1,p,name,i+1))
            i+=1
res.sort(reverse=True)
tot=len(res)
print('fns',tot,'>100',sum(1 for r in res if r[0]>100),'>120',sum(1 for r in res if r[0]>120),'>150',sum(1 for r in res if r[0]>150))
for r in res[:20]: print(r)
