"""Throwaway (stop 45), run from the repository root: how a scan finer than 2 mm should come down to the
model's 2 mm grid.

`scale_blur.py` found every single scan finer than 2 mm (brainchop 1 mm, AFNI 0.94 x 0.94 x 1.2 mm, and the
in-plane axes of SPM's 1 x 1 x 3 mm) softer on the 2 mm grid than any IXI or NiChart scan, on all three axes
alike (log d1/d2 energy ratio about -0.8 against -0.45 to -0.6). Preprocessing resamples with TorchIO's linear
interpolation; on an aligned grid that averages neighbouring 1 mm voxels, a box filter a 2 mm acquisition
does not apply. A 2 mm acquisition keeps k-space up to 0.25 cycles/mm and nothing above. Candidates:
  linear      as shipped;
  kspace+lin  the scan's spectrum truncated at the 2 mm grid's Nyquist along each finer axis, then linear;
  kspace+sinc the same, then windowed-sinc (Lanczos) interpolation, which keeps the band it is given.
Check 1 (IXI, not the evaluation scans): 8 IXI validation scans brought to 1 mm by zero-filling k-space
(a 1 mm copy whose content a 2 mm grid holds exactly) and back: the error against the original and the
sharpness ratios. Check 2 (once, the method fixed by physics and check 1): the ratios of the single scans."""
from pathlib import Path
import numpy as np, scipy.fft, torch, torchio as tio
torch.set_num_threads(1)
from hetero_qc.data.preprocess import _subject
from hetero_qc.data import FolderSource
from hetero_qc.evaluation.experiment import trained

TARGET = 2.0
m = trained("long", "multitask", 8, checkpoint="src/hetero_qc/shipped/model.ckpt")


def lowpass(image: tio.ScalarImage, target: float) -> tio.ScalarImage:
    """Zero the spectrum above 1/(2 target) cycles/mm along every axis finer than target (padded FFT)."""
    x = image.data.double().numpy()
    for axis, s in enumerate(image.spacing):
        if s >= 0.99 * target:
            continue
        n = x.shape[axis + 1]
        pad = scipy.fft.next_fast_len(2 * n)
        f = np.fft.rfft(x, n=pad, axis=axis + 1)
        freqs = np.fft.rfftfreq(pad, d=s)
        keep = (freqs <= 1 / (2 * target)).reshape([-1 if i == axis + 1 else 1 for i in range(4)])
        x = np.take(np.fft.irfft(f * keep, n=pad, axis=axis + 1), range(n), axis=axis + 1)
    return tio.ScalarImage(tensor=torch.from_numpy(x).float(), affine=image.affine)


def down(image: tio.ScalarImage, method: str) -> torch.Tensor:
    image = tio.ToCanonical()(image)
    if method != "linear":
        image = lowpass(image, TARGET)
    interp = "lanczos" if method == "kspace+sinc" else "linear"
    return tio.Resample(TARGET, image_interpolation=interp)(image).data[0].float()


def upsample2(image: tio.ScalarImage) -> tio.ScalarImage:
    """Zero-filled k-space: twice the samples per axis, voxel centres of the old grid kept at even indices."""
    x = image.data[0].double().numpy()
    f = np.fft.fftshift(np.fft.fftn(x))
    pads = [((2 * n - n) // 2, 2 * n - n - (2 * n - n) // 2) for n in x.shape]
    up = np.fft.ifftn(np.fft.ifftshift(np.pad(f, pads))).real * 8
    aff = image.affine.copy()
    aff[:3, :3] = aff[:3, :3] / 2
    return tio.ScalarImage(tensor=torch.from_numpy(up).float()[None], affine=aff)


def ratio(x: torch.Tensor, head: torch.Tensor) -> np.ndarray:
    out = []
    for axis in range(3):
        n = x.shape[axis]
        d1 = x.narrow(axis, 1, n - 2) - x.narrow(axis, 0, n - 2)
        d2 = x.narrow(axis, 2, n - 2) - x.narrow(axis, 0, n - 2)
        inside = head.narrow(axis, 0, n - 2) & head.narrow(axis, 2, n - 2)
        out.append(float(((d1[inside] ** 2).mean() / (d2[inside] ** 2).mean()).log()))
    return np.round(np.array(out), 3)


methods = ("linear", "kspace+lin", "kspace+sinc")
print("check 1: IXI validation scans, 2 mm -> 1 mm by zero-filled k-space -> 2 mm")
val = m.val_scans[:8]
source = FolderSource(Path("data/ixi-hh-t1-2mm"), "t1/*_T1w.nii.gz", r"(?P<subject>.+)_T1w")
records = {r.subject: r for r in source.records()}
for scan in val:
    t1 = _subject(records[scan.subject])["t1"]
    original = tio.ToCanonical()(t1).data[0].float()
    head = original > 0.1 * float(original.max())
    up = upsample2(t1)
    print(f"{scan.subject} original {ratio(original, head)}")
    for method in methods:
        back = down(up, method)
        if back.shape != original.shape:
            print("  shape", back.shape, original.shape); continue
        rel = float(((back - original)[head] ** 2).mean().sqrt() / original[head].std())
        print(f"  {method:12s} error/sd {rel:.3f} ratios {ratio(back, head)}")

print("check 2: the single scans (ratio per axis on the 2 mm grid, head > 10% of max)")
for r in FolderSource(Path("../shared/data/other-sites/single"), "*.nii.gz", r"(?P<subject>.+)_T1w").records():
    t1 = _subject(r)["t1"]
    for method in methods:
        x = down(t1, method)
        print(f"{r.subject:18s} {str(tuple(round(s, 2) for s in t1.spacing)):20s} {method:12s} {ratio(x, x > 0.1 * float(x.max()))}")
