"""The FLOP counter against hand-computed values for dcgan."""

from ganbench.archs import build_spec
from ganbench.archs.flops import convolutions, forward_macs, train_step_flops
from ganbench.config import TrainConfig


def test_dcgan_forward_macs_by_hand():
    spec = build_spec("dcgan", 1)
    assert forward_macs(spec.generator) == {
        "fc": 100 * 8192,
        "deconv1": 4 * 4 * 512 * 256 * 16,   # input pixels x in x out x k^2
        "deconv2": 8 * 8 * 256 * 128 * 16,
        "deconv3": 16 * 16 * 128 * 1 * 16,
    }
    assert forward_macs(spec.discriminator) == {
        "conv1": 16 * 16 * 64 * 1 * 16,     # output pixels x out x in x k^2
        "conv2": 8 * 8 * 128 * 64 * 16,
        "fc": 8192,
    }


def test_convolutions_with_their_input_shapes():
    """What benchmarks/conv_layers.py times: each convolution and the (C, H, W) it reads, also
    inside residual blocks (main path, then shortcut)."""
    spec = build_spec("dcgan", 1)
    assert [(layer.name, shape) for layer, shape in convolutions(spec.generator)] == [
        ("deconv1", (512, 4, 4)), ("deconv2", (256, 8, 8)), ("deconv3", (128, 16, 16))]
    assert [(layer.name, shape) for layer, shape in convolutions(spec.discriminator)] == [
        ("conv1", (1, 32, 32)), ("conv2", (64, 16, 16))]
    resnet_d = convolutions(build_spec("wgan_gp_resnet", 3).discriminator)
    assert len({layer.name for layer, _ in resnet_d}) == len(resnet_d)
    assert sum(forward_macs(build_spec("wgan_gp_resnet", 3).discriminator).values()) == sum(
        layer.out_channels * layer.in_channels * layer.kernel**2 * layer.out_size(h) * layer.out_size(w)
        for layer, (_, h, w) in resnet_d) + 128  # the final Dense


def test_dcgan_train_step_flops():
    spec = build_spec("dcgan", 1)
    g, d = 68_452_352, 8_658_944
    assert sum(forward_macs(spec.generator).values()) == g
    assert sum(forward_macs(spec.discriminator).values()) == d
    config = TrainConfig(batch_size=64)
    # n_dis = 1: G 3x forward, D 8x forward; 2 FLOPs per multiply-add
    assert train_step_flops(spec, config) == 2 * 64 * (3 * g + 8 * d) == 35_152_461_824
    n_dis_2 = config.replace(n_dis=2)
    assert train_step_flops(spec, n_dis_2) - train_step_flops(spec, config) == 2 * 64 * (g + 6 * d)
    # a fresh G batch of 32: its own G forward, and the G update at 32 images
    assert train_step_flops(spec, config.replace(batch_size_g=32)) == 2 * 64 * (g + 6 * d) + 2 * 32 * (3 * g + 2 * d)
    # WGAN-GP: the critic on interpolates, its input gradient, the backward through both
    assert train_step_flops(spec, config.replace(loss="wgan-gp")) - train_step_flops(spec, config) == 2 * 64 * 6 * d
    # one forward of G and D (real, fake), both backward: G 3x, D 6x
    assert train_step_flops(spec, config.replace(update="simultaneous")) == 2 * 64 * (3 * g + 6 * d)
    assert train_step_flops(build_spec("dcgan", 3), config) > train_step_flops(spec, config)


def test_official_examples_forward_macs_by_hand():
    g = forward_macs(build_spec("dcgan_pytorch_example", 3).generator)
    assert g["deconv0"] == 1 * 1 * 100 * 512 * 16 and g["deconv1"] == 4 * 4 * 512 * 256 * 16
    assert g["deconv4"] == 32 * 32 * 64 * 3 * 16
    d = forward_macs(build_spec("dcgan_pytorch_example", 3).discriminator)
    assert d["conv0"] == 32 * 32 * 64 * 3 * 16 and d["conv3"] == 4 * 4 * 512 * 256 * 16 and d["conv4"] == 512 * 16
    tutorial = build_spec("dcgan_tf_tutorial", 1)
    assert forward_macs(tutorial.generator) == {
        "fc": 100 * 12544,
        "deconv1": 7 * 7 * 256 * 128 * 25,
        "deconv2": 7 * 7 * 128 * 64 * 25,   # 'same' at stride 2: 7x7 -> 14x14
        "deconv3": 14 * 14 * 64 * 1 * 25,
    }
    assert forward_macs(tutorial.discriminator) == {
        "conv1": 14 * 14 * 64 * 1 * 25, "conv2": 7 * 7 * 128 * 64 * 25, "fc": 6272}


def test_residual_blocks_count_both_paths():
    """sngan_resnet at 32x32, width 1/8: G block 1 is 32 -> 32 channels, 4x4 -> 8x8;
    D's first block is 3 -> 16 channels, 32x32 -> 16x16 (its shortcut pools before the 1x1 conv)."""
    spec = build_spec("sngan_resnet", 3, 32, 0.125)
    g = forward_macs(spec.generator)
    assert g["block1_c1"] == g["block1_c2"] == 8 * 8 * 32 * 32 * 9
    assert g["block1_sc"] == 8 * 8 * 32 * 32
    assert g["conv_out"] == 32 * 32 * 3 * 32 * 9
    d = forward_macs(spec.discriminator)
    assert d["block1_c1"] == 32 * 32 * 16 * 3 * 9 and d["block1_c2"] == 32 * 32 * 16 * 16 * 9
    assert d["block1_sc"] == 16 * 16 * 16 * 3
    assert d["fc"] == 16  # after global sum pooling


def test_biggan_layers_count_their_products():
    """Self-attention at 16x16 on 64 channels: theta, phi (64 -> 8), g (64 -> 32), o (32 -> 64) at
    256 positions, then [256 x 64 over 8] and [32 x 256 over 64]; conditional BN: two Dense of the
    148-d conditioning vector; the projection: one product per feature."""
    from ganbench.archs import spec as S

    net = S.Network("D", (64, 16, 16), (S.SelfAttention("attn", 64), S.CondBatchNorm("cbn", 64, "cond1", 148),
                                         S.GlobalPool("sum"), S.Projection("embed", 10, 64)))
    macs = forward_macs(net)
    assert macs == {"attn_theta": 256 * 64 * 8, "attn_phi": 256 * 64 * 8, "attn_g": 256 * 64 * 32,
                    "attn_o": 256 * 32 * 64, "attn_matmuls": 256 * 64 * 8 + 256 * 64 * 32,
                    "cbn_gain": 148 * 64, "cbn_bias": 148 * 64, "embed": 64}
