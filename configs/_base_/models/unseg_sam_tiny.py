# A SAM-shaped UnSeg small enough for a CPU: the same topology as ViT-B
# (windowed and global blocks, neck, two-way decoders, noise head) with a
# 96-dim, 4-block encoder, a 256 px generator and a 128 px surrogate.
_base_ = ['./unseg_sam_vit_b.py']
model = dict(
    generator=dict(arch='tiny', img_size=256, sam_checkpoint=None),
    surrogate=dict(arch='tiny', img_size=128),
    loss=dict(num_points=32 * 32))
