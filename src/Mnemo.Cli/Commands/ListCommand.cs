using System.CommandLine;
using System.Reflection;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Tasks;
using Mnemo.Training;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

static class ListCommand
{
    public static Command Create()
    {
        var fields = new Option<bool>("--fields") { Description = "Also list every config field with its default and meaning" };
        var command = new Command("list", "List models (token mixers), tasks, bundled presets and config fields.") { fields };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var mixers = new Table().Title("models (model.mixer)").AddColumns("name", "what");
            mixers.AddRow("attention", "causal softmax attention (SDPA), rotary/learned positions, " +
                "optional sliding window and short convolutions; KV cache when streaming; landmark tokens with top-k block " +
                "retrieval (attention.landmark_block, landmark_top_k)");
            mixers.AddRow("linear_attention", "S += φ(k)ᵀv, no decay; " +
                "feature maps identity / elu_p1 / relu / taylor, optional normaliser");
            mixers.AddRow("retnet", "fixed per-head decay 1 − 2^(−5−h), rotary q/k, gated output");
            mixers.AddRow("gla", "per-key-channel decay logsigmoid(low-rank x)/16, gated output");
            mixers.AddRow("mamba2", "SSD: in_proj → conv → Δ = softplus(dt + dt_bias), decay exp(−Δ·exp(A_log)), " +
                "D skip, gated RMSNorm");
            mixers.AddRow("log_linear_mamba2", "log-linear Mamba-2: Mamba-2 with one memory per Fenwick level of the prefix " +
                "(O(log T) states), each read with its own data-dependent weight softplus(L · dl)");
            mixers.AddRow("mamba3", "Mamba-3 (SISO): trapezoidal update α S + β k̃_{t−1}ᵀ v_{t−1} + γ k̃ᵀ v, " +
                "q and k rotated by data-dependent angles (the complex state), normed B/C with head biases, no convolution, D skip, " +
                "silu(z) gate");
            mixers.AddRow("delta_net", "delta rule, β = σ(b_proj x), L2-normalised q/k");
            mixers.AddRow("gated_delta_net", "delta rule with Mamba-2 decay −exp(A_log)·softplus(a_proj x + dt_bias), gated output; " +
                "with model.matrix.householder_steps n > 1 it is Gated DeltaProduct (n delta steps per token; on delta_net, " +
                "DeltaProduct), with model.matrix.negative_eigenvalues β ∈ (0, 2)");
            mixers.AddRow("log_linear_gated_delta_net", "log-linear Gated DeltaNet: Gated DeltaNet with one memory per Fenwick " +
                "level of the prefix, every level taking the delta transition, each read with its own weight softplus(L · l_proj x)");
            mixers.AddRow("kda", "Kimi Delta Attention: delta rule with a decay per key channel " +
                "−exp(A_log)·softplus(f_proj x + dt_bias) (low-rank f_proj), output gated by sigmoid(g_proj x)");
            mixers.AddRow("gdn2", "Gated DeltaNet-2: KDA with an erase gate per key channel σ(b_proj x) and a write gate per value " +
                "channel σ(w_proj x) in place of β");
            mixers.AddRow("rwkv7", "RWKV-7 time mixing: (diag(w) − (κ̂ ⊙ a) κ̂ᵀ) S + k̃ vᵀ, token shift, low-rank decay, " +
                "learning rate, " +
                "value residual from the first rwkv7 layer, group norm, bonus term, gated output");
            mixers.AddRow("comba", "Comba: (α − β k pᵀ) S + β k vᵀ (the erase reads the state before the decay), " +
                "Gated DeltaNet's " +
                "decay, query corrected q − D·σ(d)·k, output gated by sigmoid(g_proj x)");
            mixers.AddRow("mlstm", "xLSTM's mLSTM: C = f C + i k vᵀ and a normaliser n = f n + i k, exponential input gate " +
                "i = e^ĩ with stabiliser m, read q C / max(|q·n|, 1), output gated by sigmoid(ogate x)");
            mixers.AddRow("mesa_net", "MesaNet: H = Σ β k kᵀ and G = Σ β k vᵀ with a decay, read Gᵀ (H + λ)⁻¹ q solved by " +
                "conjugate gradient (model.matrix.cg_steps)");
            mixers.AddRow("mom", "mixture of memories: a router sends each token to top_k of num_memories memories (rule mom.rule), " +
                "plus an optional shared memory; balance loss in training");
            mixers.AddRow("titans", "Titans' long-term memory (LMM): " +
                "an MLP memory trained per token on ‖M(k) − v‖² with momentum and forgetting; " +
                "chunk-start gradients (deep.chunk_size)");
            mixers.AddRow("moneta", "Miras: ℓ3 loss, ℓ4-normalised weights, gradient descent");
            mixers.AddRow("yaad", "Miras: Huber loss with a data-dependent threshold δ, decay, gradient descent");
            mixers.AddRow("memora", "Miras: ℓ2 loss, KL retention (weights = softmax of logits per row), gradient descent on the logits");
            mixers.AddRow("omeganet", "ATLAS' Omega rule: the loss over the last deep.window tokens (gated by γ), momentum");
            mixers.AddRow("atlas", "Omega rule + Muon (Newton–Schulz-5 on the momentum); optional polynomial/Taylor feature maps");
            mixers.AddRow("titans_mac", Markup.Escape("Titans memory as context: per segment (titans.segment_size), " +
                "attention over [persistent tokens ‖ memory retrieval ‖ segment], " +
                "then the memory stores the attention output and gates it"));
            mixers.AddRow("titans_mag", Markup.Escape("Titans memory as gate: (sliding-window) attention with persistent tokens, " +
                "gated by the Titans memory run over [persistent ‖ x]"));
            mixers.AddRow("titans_mal", Markup.Escape("Titans memory as layer: the Titans memory over [persistent ‖ x], " +
                "then (sliding-window) attention"));
            mixers.AddRow("aaren", Markup.Escape("Aaren (attention as an RNN): softmax attention of a learned per-head query " +
                "over every prefix, by a parallel prefix scan; O(1) state (running max, normaliser, weighted sum)"));
            mixers.AddRow("prefix_linear_attention", Markup.Escape("JRT-RNN (just read twice): linear attention that also " +
                "reads the prompt non-causally through its own encoder keys and values; in training the prompt is every " +
                "position up to the first scored one, in a stream the first piece"));
            mixers.AddRow("liger_attention", Markup.Escape("Liger attention: an attention layer's own weights read half by " +
                "sliding-window softmax attention (attention.window) and half by a GLA memory with softmax feature maps and the " +
                "gate logsigmoid(k)/16; no new parameters, so an attention checkpoint loads into it (training.init_from)"));
            mixers.AddRow("lstm", Markup.Escape("LSTM (libtorch's fused cell), hidden size d_model; state (h, c); " +
                "rnn.bidirectional for mnemo forecast only; rnn.adc_bits reads its activations through a ramp ADC"));
            mixers.AddRow("gru", Markup.Escape("GRU (libtorch's fused cell), hidden size d_model; state h; " +
                "rnn.bidirectional for mnemo forecast only"));
            mixers.AddRow("(hybrids)", Markup.Escape("model.layer_mixers lists one mixer per layer, e.g. " +
                "[\"gated_delta_net\", \"attention\"]"));
            mixers.AddRow("memmamba", "MemMamba: a pool of the last memmamba.pool_size notes of important tokens (σ(w·x) > " +
                "threshold), read by each later token through attention and a gate before a Mamba-2 layer");
            mixers.AddRow("synaptic_resonance", Markup.Escape("fast weights written with relevance σ(w·x + α·ρ): ρ is how " +
                "familiar the key is to a decaying key trace; an irrelevant token neither writes nor forgets (as Mnemo builds " +
                "the paper's idea; synaptic.resonance false drops ρ)"));
            mixers.AddRow("(segments) rmt", "around any backbone (model.segments.kind): memory tokens read before and written after " +
                "each segment of model.segments.length tokens, carried to the next (Recurrent Memory Transformer)");
            mixers.AddRow("(segments) hmt", "RMT whose read memory is recalled from a cache of the last segments' memories by a " +
                "summary of the segment's first tokens; sensory tokens (HMT)");
            mixers.AddRow("(reweaving)", "around any backbone (model.reweaving.enabled): states of important tokens captured at every " +
                "level into pools of the last reweaving.pool_size, read by the final hidden state and weighed across levels");
            mixers.AddRow("(loop) recurrentgpt", "not a mixer: `mnemo write` runs RecurrentGPT's loop (a rewritten short-term memory, " +
                "past paragraphs retrieved by embedding) around a text model; `mnemo passage-recall` measures its retrieval");
            mixers.AddRow("(experiment) leaky rnn", "not a mixer: `mnemo timescales` trains a leaky RNN with a trainable timescale " +
                "τ per neuron on N-parity / N-DMS under the single-head and multi-head curricula");
            mixers.AddRow("(experiment) convlstm", "not a mixer: `mnemo grid-forecast` trains the ConvLSTM encoding-forecasting " +
                "network (convolutional gates and state, peepholes) and the FC-LSTM baseline on moving shapes");
            mixers.AddRow("(experiment) sparsey", "not a mixer: `mnemo sparsey` stores sequences in Sparsey's macrocolumn (sparse " +
                "distributed codes chosen by familiarity, binary weights, one trial) beside the linear and delta matrix memories");
            mixers.AddRow("(experiment) recoding", "not a mixer: `mnemo recoding` corrects an LSTM language model's states at inference " +
                "by gradient steps on its surprisal or prediction entropy, on noisy text");
            mixers.AddRow("(episodic) em-llm", "not a mixer: `mnemo episodic` reads a trained attention model with EM-LLM's " +
                "surprise-segmented events, retrieved per block (no retraining)");
            AnsiConsole.Write(mixers);

            // Every task kind of a run config, from the union RunConfig binds: nothing to keep in sync.
            var tasks = new Table().Title("tasks (task.kind; none = mqar)").AddColumns("kind", "what");
            foreach (var (kind, type) in TaskKinds.Kinds)
                tasks.AddRow(Markup.Escape(kind), Markup.Escape(type.GetCustomAttribute<HelpAttribute>()?.Text ?? ""));
            AnsiConsole.Write(tasks);

            var presets = new Table().Title("presets (--config NAME)").AddColumns("name", "description");
            foreach (var name in RunConfig.Presets())
                presets.AddRow(Markup.Escape(name), Markup.Escape(RunConfig.Load(name).Description));
            AnsiConsole.Write(presets);

            var sweeps = new Table().Title("bundled sweeps (mnemo sweep --config NAME)").AddColumns("name", "runs", "description");
            foreach (var name in Mnemo.Sweeps.SweepConfig.Presets())
            {
                var sweep = Mnemo.Sweeps.SweepConfig.Load(name);
                sweeps.AddRow(Markup.Escape(name), sweep.Runs().Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Markup.Escape(sweep.Description));
            }
            AnsiConsole.Write(sweeps);

            if (parse.GetValue(fields))
            {
                var table = new Table().Title("config fields (--set FIELD=VALUE)").AddColumns("field", "type", "default", "meaning");
                AddFields(table, "model", new ModelConfig());
                table.AddRow("task.kind", Markup.Escape(TaskKinds.Allowed), Markup.Escape($"\"{new RunConfig().TaskKind}\""),
                    "the task; the fields below marked (kind) belong to that kind");
                foreach (var (kind, type) in TaskKinds.Kinds)
                    AddFields(table, "task", Activator.CreateInstance(type)!, $"({kind}) ");
                AddFields(table, "training", new TrainingConfig());
                AnsiConsole.Write(table);
                var forecast = new Table().Title("forecast config fields (mnemo forecast --set FIELD=VALUE; model.* and training.* as " +
                    "above, with the defaults below)").AddColumns("field", "type", "default", "meaning");
                var defaults = new Mnemo.Forecasting.ForecastConfig();
                AddFields(forecast, "data", defaults.Data);
                foreach (var (field, value) in new (string, object)[]
                {
                    ("model.d_model", defaults.Model.DModel), ("model.mlp_ratio", defaults.Model.MlpRatio),
                    ("training.steps", defaults.Training.Steps), ("training.batch_size", defaults.Training.BatchSize),
                    ("training.lr", defaults.Training.Lr), ("training.warmup_steps", defaults.Training.WarmupSteps),
                    ("training.weight_decay", defaults.Training.WeightDecay),
                })
                    forecast.AddRow(field, "", Markup.Escape(System.Text.Json.JsonSerializer.Serialize(value)), "the forecaster's default");
                AnsiConsole.Write(forecast);
            }
            return 0;
        }));
        return command;
    }

    static readonly ConfigUnion TaskKinds = ConfigUnion.Of(typeof(ITask))!;

    /// <summary>One row per field of <paramref name="defaults"/>, a section (model.deep) as the rows of its fields.</summary>
    static void AddFields(Table table, string prefix, object defaults, string note = "")
    {
        foreach (var p in defaults.GetType().GetProperties().Where(p => p.CanWrite))
        {
            object? value = p.GetValue(defaults);
            if (value is not null && p.PropertyType.IsClass && p.PropertyType != typeof(string) && !p.PropertyType.IsArray)
            {
                AddFields(table, $"{prefix}.{ConfigBinder.KeyOf(p)}", value, note);
                continue;
            }
            string shown = value is Array ? "[…]" : System.Text.Json.JsonSerializer.Serialize(value, p.PropertyType,
                ConfigBinder.WriteOptions);
            var range = p.GetCustomAttribute<RangeAttribute>();
            string type = ConfigBinder.Describe(p.PropertyType) + (range is null ? "" : $" in [{range.Min:G6}, {range.Max:G6}]");
            table.AddRow(Markup.Escape($"{prefix}.{ConfigBinder.KeyOf(p)}"), Markup.Escape(type), Markup.Escape(shown),
                Markup.Escape(note + (p.GetCustomAttribute<HelpAttribute>()?.Text ?? "")));
        }
    }
}
