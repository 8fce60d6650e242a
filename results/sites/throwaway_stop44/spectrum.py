"""Throwaway (stop 44), run from the repository root: the power spectrum of each single other-site scan along each canonical axis on its own grid (log10 mean power in bands of cycles/mm), to tell a scan acquired sharp along every axis from one whose slices are thick. Usage: spectrum.py NIFTI [NIFTI ...]"""
import nibabel as nib, numpy as np, sys
for f in sys.argv[1:]:
    img = nib.as_closest_canonical(nib.load(f))
    x = np.asarray(img.dataobj, dtype=np.float32)
    zooms = img.header.get_zooms()[:3]
    x = x - x.mean()
    print(f.split('/')[-1], x.shape, zooms)
    for a in range(3):
        F = np.abs(np.fft.rfft(x, axis=a)) ** 2
        other = tuple(i for i in range(3) if i != a)
        p = F.mean(axis=other)
        freq = np.fft.rfftfreq(x.shape[a], d=zooms[a])  # cycles/mm
        bands = [(0.05, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5)]
        vals = []
        for lo, hi in bands:
            m = (freq >= lo) & (freq < hi)
            vals.append(np.log10(p[m].mean()) if m.any() else np.nan)
        print("  axis", a, "RAS", " ".join(f"{v:6.2f}" for v in vals))
