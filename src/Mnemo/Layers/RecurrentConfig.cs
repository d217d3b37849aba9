using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>model.rnn: the classic recurrent cells (lstm, gru).</summary>
public sealed record RecurrentConfig
{
    [Help("a second cell reads the sequence backwards and o_proj merges both directions; for models that read a whole " +
        "input before answering (mnemo forecast), refused in a language model, which must not read ahead")]
    public bool Bidirectional { get; init; }
    [Help("read every gate and candidate activation through a ramp ADC of this many bits (analog crossbar cells, " +
        "docs/mechanisms.md#analog-adc-activations); 0 = exact activations by libtorch's fused cell"), Range(0, 24)]
    public int AdcBits { get; init; }
    [Help("the ADC's comparator noise, in units of one level (0 = none)"), Range(0, 100)]
    public double AdcNoise { get; init; }
}
