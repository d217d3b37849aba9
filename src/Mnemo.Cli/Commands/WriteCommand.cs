using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.Llama;
using Mnemo.Runtime;
using Mnemo.Writing;
using Spectre.Console;
using static Mnemo.Cli.Commands.OptionValues;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo write` (RecurrentGPT's loop) and `mnemo passage-recall` (its long-term memory's retrieval).</summary>
static class WriteCommand
{
    public static Command Create()
    {
        var checkpoint = CheckpointOption.Create("a language model trained on text (task kind lm); or give --gguf");
        checkpoint.Required = false;
        var gguf = new Option<string?>("--gguf")
        {
            Description = "A local GGUF model file to write with instead (llama.cpp through LLamaSharp; nothing is downloaded)",
        };
        var context = new Option<int>("--context")
        {
            Description = "With --gguf: the context llama.cpp allocates, in tokens (prompt and output must fit)",
            DefaultValueFactory = _ => 4096,
        };
        var opening = new Option<string?>("--opening") { Description = "The opening paragraph (also the first short-term memory)" };
        var openingFile = new Option<FileInfo?>("--opening-file") { Description = "Read the opening paragraph from this file" };
        var instruction = new Option<string>("--instruction")
        {
            Description = "What the first generated paragraph should do", DefaultValueFactory = _ => "Continue the story.",
        };
        var steps = new Option<int>("--steps") { Description = "Paragraphs to write", DefaultValueFactory = _ => 5 };
        var outDir = new Option<string>("--out", "-o")
        {
            Description = "Run folder: state.json (after every step) and transcript.md", Required = true,
        };
        var resume = new Option<bool>("--resume") { Description = "Continue the run saved in --out instead of starting one" };
        var tokens = new Option<int>("--tokens") { Description = "Tokens the model samples per step", DefaultValueFactory = _ => 400 };
        var promptTokens = new Option<int>("--prompt-tokens")
        {
            Description = "The model reads the prompt's last this many tokens", DefaultValueFactory = _ => 2048,
        };
        var temperature = new Option<double>("--temperature")
        {
            Description = "Sampling temperature; 0 = greedy", DefaultValueFactory = _ => 0.8,
        };
        var topK = new Option<int>("--top-k")
        {
            Description = "Sample among the k most likely tokens; 0 = all", DefaultValueFactory = _ => 20,
        };
        var seed = new Option<long>("--seed") { Description = "Seed of the sampler" };
        var embedder = EmbedderOption();
        var retrieved = new Option<int>("--retrieved") { Description = "Past paragraphs in each prompt", DefaultValueFactory = _ => 2 };
        var memoryWords = new Option<int>("--memory-words")
        {
            Description = "Bound of the short-term memory in words (a longer rewrite is cut)", DefaultValueFactory = _ => 500,
        };
        var attempts = new Option<int>("--attempts")
        {
            Description = "Tries per step when the output lacks its three sections; then the whole output becomes the paragraph",
            DefaultValueFactory = _ => 3,
        };
        var command = new Command("write",
            "RecurrentGPT's loop (docs/writing.md): each step retrieves the past paragraphs most similar to the instruction, " +
            "prompts the model with the short-term memory, the previous paragraph, the instruction and those paragraphs, and " +
            "reads back the next paragraph, the rewritten memory and the next instruction. Saves the state after every step.")
        {
            checkpoint, gguf, context, opening, openingFile, instruction, steps, outDir, resume, tokens, promptTokens, temperature, topK,
            seed, embedder, retrieved, memoryWords, attempts,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            int paragraphs = Positive(parse.GetValue(steps), "--steps");
            var options = new WriterOptions
            {
                Retrieved = NonNegative(parse.GetValue(retrieved), "--retrieved"),
                MemoryWords = Positive(parse.GetValue(memoryWords), "--memory-words"),
                Attempts = Positive(parse.GetValue(attempts), "--attempts"),
            };
            string dir = parse.GetValue(outDir)!, statePath = Path.Combine(dir, "state.json");
            WriterState state;
            if (parse.GetValue(resume))
            {
                if (!File.Exists(statePath))
                    throw new MnemoException($"--resume: {statePath} does not exist; start a run without --resume");
                state = WriterState.Load(statePath);
            }
            else
            {
                if (File.Exists(statePath))
                    throw new MnemoException($"--out: {dir} already holds a run (state.json); continue it with --resume " +
                        "or choose another folder");
                state = RecurrentWriter.Start(Opening(parse.GetValue(opening), parse.GetValue(openingFile)), parse.GetValue(instruction)!);
            }
            string? model = parse.GetValue(checkpoint), file = parse.GetValue(gguf);
            if ((model is null) == (file is null))
                throw new MnemoException("give --checkpoint (a Mnemo model trained on text) or --gguf (a local GGUF model), " +
                    "one of the two");
            string embedding = parse.GetValue(embedder) ?? (file is null ? "model" : "ngrams");
            if (file is not null && embedding == "model")
                throw new MnemoException("--embedder model embeds with a Mnemo checkpoint's hidden states; with --gguf use " +
                    "--embedder ngrams");
            int count = Positive(parse.GetValue(tokens), "--tokens");
            using var llama = file is null ? null : LlamaGenerator.Open(file, count, parse.GetValue(temperature), parse.GetValue(topK),
                parse.GetValue(seed), Positive(parse.GetValue(context), "--context"));
            TextCheckpoint? text = null;
            if (model is not null)
            {
                TorchRuntime.Initialise();
                text = TextCheckpoint.Load(model);
            }
            IPassageGenerator generator = llama ?? (IPassageGenerator)new ModelGenerator(text!.Model, text.Tokenizer, count,
                Positive(parse.GetValue(promptTokens), "--prompt-tokens"), parse.GetValue(temperature), parse.GetValue(topK),
                parse.GetValue(seed));
            var writer = new RecurrentWriter(generator, MakeEmbedder(embedding, text), options);
            Directory.CreateDirectory(dir);
            Console.WriteLine($"writing {paragraphs} paragraphs with {generator.Name} from {text?.Dir ?? file}; run folder {dir}");
            for (int i = 0; i < paragraphs; i++)
            {
                var (next, record) = writer.Step(state);
                File.AppendAllText(Path.Combine(dir, "transcript.md"), Transcript(record, next));
                next.Save(statePath);
                state = next;
                string found = string.Join(", ", record.Retrieved.Select(r =>
                    string.Create(CultureInfo.InvariantCulture, $"paragraph {r.Entry.Step} ({r.Similarity:F2})")));
                Console.WriteLine($"step {state.Step}: {(record.Parsed ? "read" : "fallback")} after {record.Attempts} attempt(s); " +
                    $"retrieved {(found.Length == 0 ? "nothing" : found)}; paragraph of {state.Paragraph.Length} characters");
            }
            Console.WriteLine($"{state.Step} steps, {state.Fallbacks} fallbacks (outputs without the three sections); " +
                $"long-term memory {state.LongTerm.Count} paragraphs; wrote {statePath}");
            return 0;
        }));
        return command;
    }

    public static Command CreateRecall()
    {
        var checkpoint = CheckpointOption.Create("a language model trained on text (task kind lm)");
        var passages = new Option<int>("--passages")
        {
            Description = "Passages of the held-out text to measure", DefaultValueFactory = _ => 256,
        };
        var length = new Option<int>("--length")
        {
            Description = "Characters per passage (cut at whitespace)", DefaultValueFactory = _ => 600,
        };
        var stores = new Option<int[]>("--stores")
        {
            Description = "Store sizes N: passages in the long-term memory at once. Default: 8 32 128",
            AllowMultipleArgumentsPerToken = true,
        };
        var k = new Option<int>("--k") { Description = "Passages retrieved per query (RecurrentGPT: 2)", DefaultValueFactory = _ => 2 };
        var maxTokens = new Option<int>("--max-tokens")
        {
            Description = "The model embeds a text's last this many tokens", DefaultValueFactory = _ => 1024,
        };
        var output = JsonOutput.Create();
        var command = new Command("passage-recall",
            "Retrieval of the right past passage by RecurrentGPT's long-term memory (docs/writing.md): passages of the text the " +
            "model was not trained on are cut in two; the first halves are stored, and each second half should retrieve its " +
            "own first half among N neighbouring passages. Embedders: the model's mean hidden state and character 3-grams.")
        {
            checkpoint, passages, length, stores, k, maxTokens, output,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            TorchRuntime.Initialise();
            var text = TextCheckpoint.Load(parse.GetValue(checkpoint)!);
            var pairs = PassageRecall.Pairs(text.HeldOutText(), Positive(parse.GetValue(passages), "--passages"),
                Positive(parse.GetValue(length), "--length"));
            int[] sizes = parse.GetValue(stores) is { Length: > 0 } s ? s : [8, 32, 128];
            int top = Positive(parse.GetValue(k), "--k");
            Console.WriteLine($"{pairs.Count} passages of the held-out text of {text.Task.Text.Corpus}; model {text.Dir}");
            ITextEmbedder[] embedders =
            [
                new ModelEmbedder(text.Model, text.Tokenizer, Positive(parse.GetValue(maxTokens), "--max-tokens")),
                new NgramEmbedder(),
            ];
            var scores = embedders.SelectMany(e => PassageRecall.Measure(pairs, e, sizes, top, Console.WriteLine)).ToList();
            Report.WideWhenRedirected();
            var table = new Table().AddColumns("embedder", "store N", "queries", "top-1", $"top-{top}", "chance top-1");
            foreach (var x in scores)
                table.AddRow(Markup.Escape(x.Embedder), $"{x.StoreSize}", $"{x.Queries}", Percent(x.Top1), Percent(x.TopK),
                    Percent(1.0 / x.StoreSize));
            AnsiConsole.Write(table);
            if (parse.GetValue(output) is { } file)
                JsonOutput.Write(file, new JsonObject
                {
                    ["checkpoint"] = text.Dir,
                    ["passages"] = pairs.Count,
                    ["length"] = parse.GetValue(length),
                    ["scores"] = new JsonArray([.. scores.Select(x => (JsonNode)new JsonObject
                    {
                        ["embedder"] = x.Embedder, ["store"] = x.StoreSize, ["queries"] = x.Queries, ["top1"] = x.Top1,
                        ["topk"] = x.TopK, ["k"] = x.K,
                    })]),
                });
            return 0;
        }));
        return command;
    }

    static Option<string?> EmbedderOption() => new("--embedder")
    {
        Description = "Long-term memory embedder: model (the checkpoint's mean hidden state; the default with --checkpoint) or " +
            "ngrams (character 3-grams; the default with --gguf)",
    };

    static ITextEmbedder MakeEmbedder(string name, TextCheckpoint? text) => name switch
    {
        "model" => new ModelEmbedder(text!.Model, text.Tokenizer, 1024),
        "ngrams" => new NgramEmbedder(),
        _ => throw new MnemoException($"--embedder: unknown embedder \"{name}\"; allowed: model, ngrams"),
    };

    static string Opening(string? text, FileInfo? file)
    {
        if (text is not null && file is not null) throw new MnemoException("give --opening or --opening-file, not both");
        if (file is not null)
        {
            if (!file.Exists) throw new MnemoException($"--opening-file: {file.FullName} does not exist");
            return File.ReadAllText(file.FullName);
        }
        return text ?? throw new MnemoException("a new run needs an opening paragraph: --opening TEXT or --opening-file FILE");
    }

    static string Transcript(StepRecord r, WriterState next)
    {
        var b = new StringBuilder();
        b.AppendLine($"## Step {r.Step + 1}").AppendLine();
        string found = r.Retrieved.Count == 0 ? "nothing" : string.Join(", ", r.Retrieved.Select(x => $"paragraph {x.Entry.Step}"));
        string read = r.Parsed ? "read" : "not readable (fallback)";
        b.AppendLine($"Retrieved: {found}; output {read} after {r.Attempts} attempt(s){(r.MemoryCut ? "; memory cut" : "")}.");
        b.AppendLine().AppendLine("### Paragraph").AppendLine().AppendLine(next.Paragraph).AppendLine();
        b.AppendLine("### Short-term memory").AppendLine().AppendLine(next.Memory).AppendLine();
        b.AppendLine("### Instruction").AppendLine().AppendLine(next.Instruction).AppendLine();
        return b.ToString();
    }
}
