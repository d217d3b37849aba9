using Mnemo.Layers;
using Mnemo.Models;

namespace Mnemo.Training;

/// <summary>
/// LoRA fine-tuning (training.lora_rank; docs/mechanisms.md#liger-attention): a low-rank update on the projections named
/// in training.lora_targets, and every other parameter frozen, so training moves only the updates.
/// </summary>
public static class LowRank
{
    /// <summary>Whether a parameter name is one of a low-rank update's (absent from a checkpoint made without them).</summary>
    public static bool IsLowRank(string name) => name.EndsWith(".lora_a", StringComparison.Ordinal) ||
        name.EndsWith(".lora_b", StringComparison.Ordinal);

    /// <summary>Adds the updates and freezes the rest; returns how many projections got one.</summary>
    public static int Apply(LanguageModel model, TrainingConfig t)
    {
        int added = 0;
        foreach (var (name, module) in model.named_modules())
        {
            if (module is not Projection projection || !t.LoraTargets.Contains(name[(name.LastIndexOf('.') + 1)..])) continue;
            projection.AddLowRank(t.LoraRank, t.LoraAlpha);
            added++;
        }
        if (added == 0)
            throw new IO.ConfigException($"training.lora_targets: no projection of this model is named " +
                $"{string.Join(" or ", t.LoraTargets)} (attention and the memory mixers have q_proj, k_proj, v_proj, o_proj)");
        foreach (var (name, p) in model.named_parameters()) p.requires_grad = IsLowRank(name);
        return added;
    }
}
