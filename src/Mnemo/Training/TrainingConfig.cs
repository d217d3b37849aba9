using Mnemo.IO;
using Mnemo.Runtime;

namespace Mnemo.Training;

/// <summary>Optimisation, evaluation and checkpointing settings.</summary>
public sealed record TrainingConfig : IValidatedConfig
{
    [Help("seed of model initialisation and data order"), Range(0, int.MaxValue)] public int Seed { get; init; }
    [Help("maximum optimizer steps"), Range(1, 100_000_000)] public int Steps { get; init; } = 2000;
    [Help("examples per step"), Range(1, 1 << 20)] public int BatchSize { get; init; } = 64;
    [Help("peak learning rate (AdamW)"), Range(0, 10)] public double Lr { get; init; } = 3e-3;
    [Help("AdamW weight decay (not applied to norms, biases, embeddings)"), Range(0, 10)] public double WeightDecay { get; init; } = 0.1;
    [Help("AdamW beta1"), Range(0, 0.999999)] public double Beta1 { get; init; } = 0.9;
    [Help("AdamW beta2"), Range(0, 0.999999)] public double Beta2 { get; init; } = 0.98;
    [Help("linear warm-up steps"), Range(0, 100_000_000)] public int WarmupSteps { get; init; } = 100;
    [Help("final learning rate of the cosine decay as a fraction of lr"), Range(0, 1)] public double MinLrRatio { get; init; } = 0.1;
    [Help("clip the global gradient norm to this value; 0 = no clipping"), Range(0, 1e6)] public double GradClip { get; init; } = 1.0;
    [Help(
        "stop as diverged when the loss, smoothed over ~10 steps, exceeds this multiple of the first step's loss " +
        "(worse than the untrained model); 0 = off"), Range(0, 1e6)]
    public double DivergenceRatio { get; init; } = 2;
    [Help("evaluate on the test set every N steps (and at the end)"), Range(1, 100_000_000)] public int EvalEvery { get; init; } = 100;
    [Help("stop once test accuracy reaches this; 0 = never stop early"), Range(0, 1)] public double TargetAccuracy { get; init; } = 0.99;
    [Help("write a checkpoint every N steps (and at the end)"), Range(1, 100_000_000)] public int CheckpointEvery { get; init; } = 200;
    [Help("also write a checkpoint when this many minutes of training passed since the last one; 0 = by steps only"), Range(0, 1e6)]
    public double CheckpointMinutes { get; init; } = 10;
    [Help("how many recent checkpoints to keep"), Range(1, 1000)] public int KeepCheckpoints { get; init; } = 2;
    [Help("log a metrics line every N steps"), Range(1, 100_000_000)] public int LogEvery { get; init; } = 10;
    [Help("libtorch threads; 0 = all cores"), Range(0, 1024)] public int Threads { get; init; }
    [Help(
        "precision of the matrix products: fp32, or bf16 (bf16 operands, fp32 results; weights, states, gates, loss and " +
        "optimizer stay fp32; docs/architecture.md#bf16-matmuls)")]
    public Precision Precision { get; init; }
    [Help("a checkpoint (or run folder: its newest checkpoint) whose weights start this run instead of a random draw; names and " +
        "shapes must match the model exactly (an attention checkpoint loads into liger_attention; `mnemo convert`). " +
        "Empty = random initialisation; a resumed run continues from its own checkpoint")]
    public string InitFrom { get; init; } = "";
    [Help("LoRA: rank of a low-rank update on each of lora_targets, every other weight frozen (Liger fine-tunes this way); " +
        "0 = train every weight"), Range(0, 4096)]
    public int LoraRank { get; init; }
    [Help("LoRA: the update is scaled by lora_alpha / lora_rank"), Range(0, 1e6)] public double LoraAlpha { get; init; } = 16;
    [Help("LoRA: the projections that get an update, by name (q_proj, k_proj, v_proj, o_proj, …)")]
    public string[] LoraTargets { get; init; } = ["q_proj", "k_proj", "v_proj"];
    [Help("refuse a model whose lower-bound training memory exceeds the memory available (docs/cli.md#behaviour)")]
    public bool MemoryCheck { get; init; } = true;

    public IEnumerable<(string, string)> Validate()
    {
        if (WarmupSteps > Steps) yield return ("warmup_steps", $"{WarmupSteps} exceeds steps {Steps}");
        if (Lr == 0) yield return ("lr", "0 trains nothing; give a learning rate above 0");
    }
}
