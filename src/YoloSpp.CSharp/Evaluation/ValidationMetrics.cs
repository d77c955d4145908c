using System.Globalization;
using System.Text;
using YoloSpp.IO;
using Metrics = YoloSpp.Evaluation.Metrics;

namespace YoloSpp.Evaluation;

/// <summary>
/// yolov5's validation numbers of an evaluation, as its pictures show them: precision, recall and F1 against the
/// confidence and the precision–recall curve per class (<c>ap_per_class</c>, matching at the ten IoU thresholds of
/// val.py), the confidence of the best mean F1, and the confusion matrix with its background row and column (conf
/// 0.25, IoU 0.45). Computed from the evaluation's detections (original-image pixels, as the COCO evaluation sees
/// them) and the dataset's labels.
/// </summary>
public sealed class ValidationMetrics
{
    /// <summary>Confidence threshold of the confusion matrix (yolov5's ConfusionMatrix).</summary>
    public const double ConfusionConfidence = 0.25;
    /// <summary>IoU threshold of the confusion matrix.</summary>
    public const double ConfusionIou = 0.45;

    readonly Metrics.ApResult _ap;

    /// <summary>Class names, one per class of the dataset (index = class).</summary>
    public IReadOnlyList<string> Names { get; }
    /// <summary>The classes that have labels, ascending: the rows of the per-class arrays and curves.</summary>
    public IReadOnlyList<int> Classes => _ap.Classes;
    /// <summary>The 1,000 confidences (0 to 1) the P, R and F1 curves are sampled at; also the recall axis of
    /// <see cref="PrCurves"/>.</summary>
    public IReadOnlyList<double> Px => _ap.Px;
    /// <summary>Precision per class against <see cref="Px"/> (confidence).</summary>
    public IReadOnlyList<IReadOnlyList<double>> PrecisionCurves => _ap.PCurve;
    /// <summary>Recall per class against <see cref="Px"/> (confidence).</summary>
    public IReadOnlyList<IReadOnlyList<double>> RecallCurves => _ap.RCurve;
    /// <summary>F1 per class against <see cref="Px"/> (confidence).</summary>
    public IReadOnlyList<IReadOnlyList<double>> F1Curves => _ap.F1Curve;
    /// <summary>Precision (envelope, IoU 0.5) per class against recall <see cref="Px"/>.</summary>
    public IReadOnlyList<IReadOnlyList<double>> PrCurves => _ap.PrCurve;
    /// <summary>AP@0.5 per class (yolov5's 101-point interpolation; the COCO evaluation's numbers stay the reported mAP).</summary>
    public IReadOnlyList<double> Ap50 => _ap.Ap.Select(a => a.Length > 0 ? a[0] : 0.0).ToArray();
    /// <summary>The confidence at which the mean F1 over the classes is best (after yolov5's smoothing): the
    /// confidence to deploy at.</summary>
    public double BestConfidence => _ap.BestConfidence;
    /// <summary>Precision per class at <see cref="BestConfidence"/>.</summary>
    public IReadOnlyList<double> ClassPrecision => _ap.P;
    /// <summary>Recall per class at <see cref="BestConfidence"/>.</summary>
    public IReadOnlyList<double> ClassRecall => _ap.R;
    /// <summary>Mean precision over the classes at <see cref="BestConfidence"/> (yolov5's P); 0 without labels.</summary>
    public double Precision => _ap.P.Length > 0 ? _ap.P.Average() : 0.0;
    /// <summary>Mean recall over the classes at <see cref="BestConfidence"/> (yolov5's R); 0 without labels.</summary>
    public double Recall => _ap.R.Length > 0 ? _ap.R.Average() : 0.0;
    /// <summary>Mean F1 at <see cref="BestConfidence"/>.</summary>
    public double F1 => _ap.F1.Length > 0 ? _ap.F1.Average() : 0.0;
    /// <summary>The confusion matrix, [predicted][true], <c>Names.Count + 1</c> square: the last row is missed
    /// objects (true class, no prediction), the last column predictions of no object (background).</summary>
    public IReadOnlyList<IReadOnlyList<double>> Confusion { get; }

    ValidationMetrics(IReadOnlyList<string> names, Metrics.ApResult ap, double[][] confusion) =>
        (Names, _ap, Confusion) = (names, ap, confusion);

    /// <summary>Computes the numbers from labels and predictions per image (pixels, corners).</summary>
    /// <param name="names">One name per class.</param>
    /// <param name="images">Per image: its labels and its predictions.</param>
    internal static ValidationMetrics Compute(IReadOnlyList<string> names,
        IEnumerable<(IReadOnlyList<Metrics.Truth> Labels, IReadOnlyList<Metrics.Prediction> Predictions)> images)
    {
        var nc = names.Count;
        var confusion = Metrics.confusionEmpty(nc);
        var tp = new List<bool[]>();
        var conf = new List<double>();
        var predClass = new List<int>();
        var targetClass = new List<int>();
        foreach (var (labels, predictions) in images)
        {
            var l = labels.ToArray();
            var p = predictions.ToArray();
            tp.AddRange(Metrics.matchPredictions(Metrics.iouThresholds, l, p));
            conf.AddRange(p.Select(x => x.Conf));
            predClass.AddRange(p.Select(x => x.Class));
            targetClass.AddRange(l.Select(x => x.Class));
            // val.py updates the matrix only for images with labels (labels alone when there is no prediction)
            if (l.Length > 0) confusion = Metrics.confusionAdd(nc, ConfusionConfidence, ConfusionIou, confusion, l, p);
        }
        var ap = Metrics.apPerClass(tp.ToArray(), conf.ToArray(), predClass.ToArray(), targetClass.ToArray());
        return new ValidationMetrics(names, ap, confusion);
    }

    /// <summary>From a COCO ground truth (categories are class indices) and detections of the same images.</summary>
    internal static ValidationMetrics FromCoco(IReadOnlyList<string> names, CocoDataset gt, IEnumerable<CocoDetection> detections)
    {
        var labels = gt.Annotations.ToLookup(a => a.ImageId);
        var preds = detections.ToLookup(d => d.ImageId);
        return Compute(names, gt.Images.Select(im => (
            (IReadOnlyList<Metrics.Truth>)labels[im.Id].Select(a => new Metrics.Truth((int)a.CategoryId, a.Bbox.X, a.Bbox.Y, a.Bbox.X + a.Bbox.W, a.Bbox.Y + a.Bbox.H)).ToArray(),
            (IReadOnlyList<Metrics.Prediction>)preds[im.Id].Select(d => new Metrics.Prediction(d.Bbox.X, d.Bbox.Y, d.Bbox.X + d.Bbox.W, d.Bbox.Y + d.Bbox.H, d.Score, (int)d.CategoryId)).ToArray())));
    }

    /// <summary>The confusion matrix as CSV: a header of true classes (and "background"), one row per predicted
    /// class (and "background"); counts, or each column divided by its sum when <paramref name="normalize"/>.</summary>
    public string ConfusionCsv(bool normalize = false)
    {
        var labels = Names.Append("background").ToArray();
        var cols = Enumerable.Range(0, labels.Length).Select(j => Confusion.Sum(row => row[j])).ToArray();
        var sb = new StringBuilder();
        sb.Append("predicted\\true,").AppendJoin(',', labels.Select(Csv)).Append('\n');
        for (int i = 0; i < labels.Length; i++)
        {
            sb.Append(Csv(labels[i]));
            for (int j = 0; j < labels.Length; j++)
            {
                var v = normalize ? Confusion[i][j] / (cols[j] + 1e-9) : Confusion[i][j];
                sb.Append(',').Append(v.ToString(normalize ? "0.####" : "0", CultureInfo.InvariantCulture));
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Per class with labels: name, precision, recall, F1 at the best confidence, AP@0.5 (yolov5's), as CSV.</summary>
    public string ClassesCsv()
    {
        var sb = new StringBuilder("class,name,precision,recall,f1,ap50\n");
        for (int k = 0; k < Classes.Count; k++)
        {
            var c = Classes[k];
            sb.Append(c).Append(',').Append(Csv(c < Names.Count ? Names[c] : c.ToString(CultureInfo.InvariantCulture)));
            foreach (var v in new[] { _ap.P[k], _ap.R[k], _ap.F1[k], Ap50[k] })
                sb.Append(',').Append(v.ToString("0.#####", CultureInfo.InvariantCulture));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>
    /// Writes the pictures and tables into <paramref name="directory"/> (created if needed), as yolov5 names them:
    /// PR_curve.png, F1_curve.png, P_curve.png, R_curve.png, confusion_matrix.png (columns normalised) and
    /// confusion_matrix_counts.png, confusion_matrix.csv (counts) and classes.csv. Returns the paths written.
    /// </summary>
    public IReadOnlyList<string> WritePlots(string directory)
    {
        Directory.CreateDirectory(directory);
        string At(string name) => Path.Combine(directory, name);
        Charts.PrCurve(this, At("PR_curve.png"));
        Charts.ConfidenceCurve(this, F1Curves, "F1", At("F1_curve.png"));
        Charts.ConfidenceCurve(this, PrecisionCurves, "Precision", At("P_curve.png"));
        Charts.ConfidenceCurve(this, RecallCurves, "Recall", At("R_curve.png"));
        Charts.Confusion(this, At("confusion_matrix.png"), normalize: true);
        Charts.Confusion(this, At("confusion_matrix_counts.png"), normalize: false);
        AtomicFile.WriteAllText(At("confusion_matrix.csv"), ConfusionCsv());
        AtomicFile.WriteAllText(At("classes.csv"), ClassesCsv());
        return new[] { "PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png", "confusion_matrix.png",
            "confusion_matrix_counts.png", "confusion_matrix.csv", "classes.csv" }.Select(At).ToArray();
    }

    static string Csv(string s) => s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
