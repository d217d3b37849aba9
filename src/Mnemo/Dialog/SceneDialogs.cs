namespace Mnemo.Dialog;

/// <summary>One object of a scene; scenes list their objects from left to right.</summary>
public sealed record SceneObject(string Size, string Color, string Material, string Shape)
{
    /// <summary>How answers name it: "a small red ball".</summary>
    public string Phrase => $"a {Size} {Color} {Shape}";
}

/// <summary>The question templates (docs/dialog.md#the-dialogs). The It… kinds say "it": only the history tells which
/// object they ask about.</summary>
public enum QuestionKind
{
    /// <summary>"how many objects are red ?" / "… are metal ?" → a number word</summary>
    Count,
    /// <summary>"what is on the far left ?" / "… far right ?" → an object; it becomes the referent</summary>
    Position,
    /// <summary>"what color is the cube ?" (a shape the scene holds once) → a color; the cube becomes the referent</summary>
    ColorOf,
    /// <summary>"is there a red cube ?" → yes (it becomes the referent) or no</summary>
    Exists,
    /// <summary>"what is it made of ?" → the referent's material</summary>
    ItMaterial,
    /// <summary>"is it large ?" / "is it small ?" → yes or no</summary>
    ItSize,
    /// <summary>"what color is it ?" → the referent's color</summary>
    ItColor,
    /// <summary>"what is right of it ?" → the next object to its right (it becomes the referent) or "nothing"</summary>
    ItNeighbour,
}

/// <summary>A question, its answer, its template, and the object the round mentions last (-1: none), which the next
/// rounds' "it" means.</summary>
public sealed record DialogRound(string Question, string Answer, QuestionKind Kind, int Referent)
{
    /// <summary>Whether the question says "it": answering needs the earlier rounds.</summary>
    public bool Refers => Kind >= QuestionKind.ItMaterial;
}

/// <summary>A scene, the description that plays the image, the caption the questioner saw, and the rounds.</summary>
public sealed record SceneDialog(SceneObject[] Scene, string Description, string Caption, DialogRound[] Rounds);

/// <summary>
/// Text-only grounded dialogs in Visual Dialog's shape (docs/dialog.md#the-dialogs). There are no images here: a scene
/// of 3–6 objects with a size, color, material and shape plays the image, its full description is what the image
/// encoder reads, and the caption names one object and the count, as VisDial's caption shows the questioner a part of
/// the picture. Each dialog has ten rounds. Questions that say "it" refer to the object mentioned last (in the caption, a
/// question or an answer), so they are answerable only through the history, and the answer still needs the scene.
/// </summary>
public static class SceneDialogs
{
    public const int Rounds = 10;
    public static readonly string[] Sizes = ["small", "large"];
    public static readonly string[] Colors = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"];
    public static readonly string[] Materials = ["metal", "rubber", "wood", "glass"];
    public static readonly string[] Shapes = ["ball", "cube", "cone", "ring", "box", "cup", "star", "disk"];
    public static readonly string[] Numbers = ["zero", "one", "two", "three", "four", "five", "six"];
    const int MinObjects = 3, MaxObjects = 6;
    /// <summary>Share of rounds that say "it" when there is a referent.</summary>
    const double ReferringShare = 0.45;

    /// <summary>Every answer the grammar can give, in a fixed order: the answer pool the candidates are drawn from.</summary>
    public static IReadOnlyList<string> AllAnswers { get; } =
    [
        .. Numbers, .. Colors, .. Materials, "yes", "no", "nothing",
        .. from size in Sizes from color in Colors from shape in Shapes select new SceneObject(size, color, "", shape).Phrase,
    ];

    /// <summary><paramref name="count"/> dialogs drawn from <paramref name="seed"/> (the same seed, the same dialogs).</summary>
    public static SceneDialog[] Generate(int count, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => One(rng))];
    }

    static SceneDialog One(Random rng)
    {
        var scene = Enumerable.Range(0, rng.Next(MinObjects, MaxObjects + 1)).Select(_ => new SceneObject(
            Pick(rng, Sizes), Pick(rng, Colors), Pick(rng, Materials), Pick(rng, Shapes))).ToArray();
        string description = "from left to right : " + string.Join(" , ",
            scene.Select(o => $"{o.Size} {o.Color} {o.Material} {o.Shape}"));
        var named = Distinct(scene);                     // objects that "a <color> <shape>" names without ambiguity
        int referent = named.Count > 0 ? named[rng.Next(named.Count)] : -1;
        string caption = referent >= 0
            ? $"a picture of {Numbers[scene.Length]} objects with a {scene[referent].Color} {scene[referent].Shape}"
            : $"a picture of {Numbers[scene.Length]} objects";
        var rounds = new DialogRound[Rounds];
        for (int r = 0; r < Rounds; r++)
        {
            rounds[r] = referent >= 0 && rng.NextDouble() < ReferringShare ? Referring(scene, referent, rng) : Fresh(scene, named, rng);
            if (rounds[r].Referent >= 0) referent = rounds[r].Referent;
        }
        return new SceneDialog(scene, description, caption, rounds);
    }

    /// <summary>A question about the referent, which the question calls "it".</summary>
    static DialogRound Referring(SceneObject[] scene, int it, Random rng)
    {
        var o = scene[it];
        switch (rng.Next(4))
        {
            case 0:
                return new(rng.Next(2) == 0 ? "what is it made of ?" : "what material is it ?", o.Material, QuestionKind.ItMaterial, it);
            case 1:
                string size = Pick(rng, Sizes);
                return new($"is it {size} ?", o.Size == size ? "yes" : "no", QuestionKind.ItSize, it);
            case 2:
                return new("what color is it ?", o.Color, QuestionKind.ItColor, it);
            default:
                return it + 1 < scene.Length
                    ? new("what is right of it ?", scene[it + 1].Phrase, QuestionKind.ItNeighbour, it + 1)
                    : new("what is right of it ?", "nothing", QuestionKind.ItNeighbour, -1);
        }
    }

    /// <summary>A question that names what it asks about.</summary>
    static DialogRound Fresh(SceneObject[] scene, List<int> named, Random rng)
    {
        while (true)
            switch (rng.Next(4))
            {
                case 0:
                    if (rng.Next(2) == 0)
                    {
                        string color = Pick(rng, Colors);
                        return new($"how many objects are {color} ?", Numbers[scene.Count(o => o.Color == color)], QuestionKind.Count, -1);
                    }
                    string material = Pick(rng, Materials);
                    return new($"how many objects are {material} ?", Numbers[scene.Count(o => o.Material == material)],
                        QuestionKind.Count, -1);
                case 1:
                    int end = rng.Next(2) == 0 ? 0 : scene.Length - 1;
                    return new($"what is on the far {(end == 0 ? "left" : "right")} ?", scene[end].Phrase, QuestionKind.Position, end);
                case 2:
                    var single = Enumerable.Range(0, scene.Length).Where(i => scene.Count(o => o.Shape == scene[i].Shape) == 1).ToList();
                    if (single.Count == 0) continue;
                    int s = single[rng.Next(single.Count)];
                    return new($"what color is the {scene[s].Shape} ?", scene[s].Color, QuestionKind.ColorOf, s);
                default:
                    if (named.Count > 0 && rng.Next(2) == 0)
                    {
                        int n = named[rng.Next(named.Count)];
                        return new($"is there a {scene[n].Color} {scene[n].Shape} ?", "yes", QuestionKind.Exists, n);
                    }
                    string c = Pick(rng, Colors), shape = Pick(rng, Shapes);
                    bool present = scene.Any(o => o.Color == c && o.Shape == shape);
                    if (present) continue;                     // "yes" answers name an object once, drawn above
                    return new($"is there a {c} {shape} ?", "no", QuestionKind.Exists, -1);
            }
    }

    /// <summary>The objects whose color and shape together occur once in the scene.</summary>
    static List<int> Distinct(SceneObject[] scene) => [.. Enumerable.Range(0, scene.Length)
        .Where(i => scene.Count(o => o.Color == scene[i].Color && o.Shape == scene[i].Shape) == 1)];

    static string Pick(Random rng, string[] values) => values[rng.Next(values.Length)];
}
