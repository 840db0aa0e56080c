r"""Trains a global descriptor (GlobalFeatureNet) on image tuples mined from SfM clusters.

The original's global-features training job (a port of cnnimageretrieval-pytorch): per epoch,
`query_size` query/positive pairs are drawn, `neg_num` hard negatives per query are mined from
a random pool of `pool_size` images with the current network (other clusters only, at most one
per cluster, nearest first), and the network is trained with a contrastive or triplet loss
over the tuples. Validation loss on the database's "val" split every epoch; mAP on Revisited
Oxford/Paris every --test_freq epochs.

Data layout under --data_root:
  train/<training_dataset>/<training_dataset>.pkl    SfM database (train/val splits)
  train/<training_dataset>/ims/                       images, ims/<c[-2:]>/<c[-4:-2]>/<c[-6:-4]>/<c>
  test/<name>/gnd_<name>.pkl (or .mat), test/<name>/jpg/<image>.jpg
Writes into --directory: ckpt/ (resumable with --resume), train_logs/ (TensorBoard),
history.json, model_weights (+ .json; input of export_global_features_model).

Example:
  python tools/train_global_features.py --data_root=/data --directory=/tmp/gem_r101 \
    --arch=ResNet101 --imagenet_checkpoint=resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5
"""


from absl import app, flags

from delf_tf.global_features import training
from delf_tf.tools import common

_D = training.TrainGlobalConfig()

flags.DEFINE_string("data_root", _D.data_root,
                    "Folder holding train/<training_dataset>/ and test/<name>/ (layout above).")
flags.DEFINE_string("directory", _D.directory,
                    "Output folder: checkpoints, TensorBoard logs, history and final weights.")
flags.DEFINE_string("training_dataset", _D.training_dataset,
                    "Training database name: reads train/<name>/<name>.pkl under --data_root.")
flags.DEFINE_string("test_datasets", _D.test_datasets,
                    "Comma-separated Revisited data sets under --data_root/test evaluated every "
                    "--test_freq epochs ('' for none).")
flags.DEFINE_string("multiscale", _D.multiscale,
                    "Test-time scales, e.g. '[1, 1/2**(1/2), 1/2]'; per-scale descriptors are "
                    "combined by their generalized mean (power = the GeM p without whitening).")
flags.DEFINE_string("arch", _D.arch,
                    "Backbone: ResNet18, ResNet34, ResNet50, ResNet101 (any case), resnet_tiny.")
flags.DEFINE_enum("pool", _D.pool, ["mac", "spoc", "gem"], "Global pooling.")
flags.DEFINE_bool("whitening", _D.whitening,
                  "Train a fully connected whitening layer after pooling.")
flags.DEFINE_enum("loss", _D.loss, ["contrastive", "triplet"], "Ranking loss.")
flags.DEFINE_float("loss_margin", _D.loss_margin, "Margin of the ranking loss.")
flags.DEFINE_integer("image_size", _D.image_size,
                     "Images are shrunk so their longer side is at most this (pixels).")
flags.DEFINE_integer("neg_num", _D.neg_num, "Negatives per training tuple.")
flags.DEFINE_integer("query_size", _D.query_size, "Query/positive pairs drawn per epoch.")
flags.DEFINE_integer("pool_size", _D.pool_size, "Images in the negative pool of each epoch.")
flags.DEFINE_integer("batch_size", _D.batch_size, "Tuples per optimizer step.")
flags.DEFINE_integer("update_every", _D.update_every,
                     "Sum the gradients of this many batches before each optimizer step "
                     "(effective batch = batch_size x update_every).")
flags.DEFINE_enum("optimizer", _D.optimizer, ["adam", "sgd"],
                  "adam (AdamW) or sgd (with --momentum); both with decoupled weight decay.")
flags.DEFINE_float("lr", _D.lr, "Initial learning rate; multiplied by exp(-0.01) every epoch.")
flags.DEFINE_float("momentum", _D.momentum, "SGD momentum.")
flags.DEFINE_float("weight_decay", _D.weight_decay, "Decoupled weight decay.")
flags.DEFINE_integer("epochs", _D.epochs, "Number of epochs.")
flags.DEFINE_integer("test_freq", _D.test_freq,
                     "Evaluate --test_datasets every this many epochs (and after the last; "
                     "0: never).")
flags.DEFINE_bool("resume", _D.resume, "Resume from the latest checkpoint in --directory.")
flags.DEFINE_integer("seed", _D.seed, "Random seed (initialisation, pairs, pools, order).")
flags.DEFINE_string("imagenet_checkpoint", None,
                    "Addition: Keras HDF5 ImageNet weights for the backbone (the original "
                    "downloaded them; --pretrained). Default: random initialisation.")
flags.DEFINE_string("initial_weights", None,
                    "Addition: start the backbone from a DELF/DELG or GlobalFeatureNet "
                    "checkpoint prefix (e.g. <logdir>/delf_weights of tools/train.py).")
flags.DEFINE_bool("drop_last_stage", _D.drop_last_stage,
                  "Addition: leave out the backbone's last stage (HOW's ¬R50).")
flags.DEFINE_float("gem_power", _D.gem_power, "Addition: initial GeM power p.")
flags.DEFINE_bool("trainable_gem_power", _D.trainable_gem_power,
                  "Addition: learn the GeM power p (cnnimageretrieval-pytorch does).")
flags.DEFINE_integer("test_image_size", None,
                     "Addition: image size for the test data sets (default --image_size).")

FLAGS = flags.FLAGS


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    config = training.TrainGlobalConfig(**{
            field: getattr(FLAGS, field)
            for field in training.TrainGlobalConfig.__dataclass_fields__})
    try:
        training.validate(config)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    result = training.TrainGlobalFeatures(config)
    print(f"Final weights: {result['model_weights']}")


if __name__ == "__main__":
    app.run(main)
