using Mnemo.Layers;
using Mnemo.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>
/// The utterance classifiers of <see cref="AffectClassifierKind"/>: [B, U, F] (the modalities' features side by side)
/// → class scores [B, U, C].
/// </summary>
public sealed class AffectClassifier : nn.Module<Tensor, Tensor>
{
    readonly Sequential? mlp;
    readonly ModuleList<WindowModel> modalities;
    readonly WindowModel? fusion;
    readonly long[] _widths;

    /// <param name="widths">features of each modality, in the order they sit in the input</param>
    public AffectClassifier(ModelConfig c, AffectClassifierKind kind, int[] widths, int classes) : base(nameof(AffectClassifier))
    {
        _widths = [.. widths.Select(w => (long)w)];
        int all = widths.Sum(), d = c.DModel;
        var bidirectional = c with { Rnn = c.Rnn with { Bidirectional = true } };
        modalities = nn.ModuleList<WindowModel>();
        switch (kind)
        {
            case AffectClassifierKind.Fc:
                mlp = nn.Sequential(nn.Linear(all, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, classes));
                break;
            case AffectClassifierKind.ScLstm:
                fusion = new WindowModel(c, all, classes);
                break;
            case AffectClassifierKind.BcLstm:
                fusion = new WindowModel(bidirectional, all, classes);
                break;
            default:                                                     // hierarchical: one per modality, then the fusion
                foreach (int w in widths) modalities.Add(new WindowModel(bidirectional, w, d));
                fusion = new WindowModel(bidirectional, widths.Length * d, classes);
                break;
        }
        RegisterComponents();
    }

    /// <param name="x">[B, U, F]</param>
    /// <returns>[B, U, C]</returns>
    public override Tensor forward(Tensor x)
    {
        if (mlp is not null) return mlp.forward(x);
        if (modalities.Count == 0) return fusion!.Steps(x);
        using var scope = NewDisposeScope();
        var parts = x.split(_widths, dim: 2);                                            // per modality [B, U, F_m]
        var states = cat([.. modalities.Select((m, i) => nn.functional.relu(m.Steps(parts[i])))], 2);   // [B, U, M·D]
        return fusion!.Steps(states).MoveToOuterDisposeScope();
    }
}
