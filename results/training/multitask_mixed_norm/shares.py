"""Throwaway (stop 44): the instance shares of a checkpoint with mixed norms (models.unet.MixedNorm3d), clamped to [0, 1], by part of the network. Usage: shares.py CKPT"""
import sys, torch, numpy as np
c = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
print("global_step", c["global_step"])
groups = {}
for k, v in c["state_dict"].items():
    if k.endswith("instance_share"):
        part = "seg_decoder" if "seg_decoder" in k else ("reg_decoder" if ("upsamples" in k or "output_block" in k) else "encoder")
        groups.setdefault(part, []).append(v.clamp(0, 1).numpy())
for part, vals in groups.items():
    a = np.concatenate(vals)
    print(f"{part:12s} n={a.size:5d} mean={a.mean():.3f} min={a.min():.3f} share<0.9: {(a<0.9).mean():.3f} share<0.5: {(a<0.5).mean():.3f}")
