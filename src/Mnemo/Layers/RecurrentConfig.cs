using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>model.rnn: the classic recurrent cells (lstm, gru).</summary>
public sealed record RecurrentConfig
{
    [Help("a second cell reads the sequence backwards and o_proj merges both directions; for models that read a whole " +
        "input before answering (mnemo forecast), refused in a language model, which must not read ahead")]
    public bool Bidirectional { get; init; }
}
