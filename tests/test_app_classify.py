"""The classify view with the shared ImageNet weights and real ImageNet photos."""

from urllib.error import URLError

from conftest import DEV_IMAGES, app_test

ZEBRA = DEV_IMAGES / "n02391049_zebra.JPEG"


def upload(at, path):
    at.segmented_control(key="image_origin").set_value("Upload").run()
    at.file_uploader(key="upload").upload(path.name, path.read_bytes(), "image/jpeg")
    return at.run()


def test_an_uploaded_photo_gets_its_label_with_the_weights_preprocessing():
    at = upload(app_test(view="classify").run(), ZEBRA)
    assert not at.exception and not at.error and not at.info  # a first visit matches the weights: no warning
    assert at.subheader[0].value.startswith("zebra · ")
    assert at.selectbox(key="weights").value == "local mobilenet_v2_1.0_224_tf2_ptq.pth"
    captions = " ".join(caption.value for caption in at.caption)
    assert "keep central 87.5%, resize to 224" in captions  # the TF weights' crop, read from their sidecar
    assert "Your architecture is the weights' own" in captions


def test_an_edited_architecture_classifies_with_inherited_weights_beside_the_original():
    at = upload(app_test(view="classify", width="0.75").run(), ZEBRA)
    assert not at.exception and not at.error
    titles = [markdown.value for markdown in at.markdown]
    assert "**Your architecture, 0.75/224 (inherited weights)**" in titles
    assert "**Original, 1.0/224 (as trained)**" in titles
    yours, original = (subheader.value for subheader in at.subheader)
    assert yours.startswith("zebra · ") and original.startswith("zebra · ") and yours != original
    note = " ".join(caption.value for caption in at.caption)
    assert "width 0.75 instead of 1.0" in note and "sliced" in note and "no training" in note
    layers = at.dataframe[0].value
    assert set(layers["what happened"]) == {"copied", "sliced"} and len(layers) == 53


def test_grown_architecture_gives_the_original_probabilities():
    grown = "1-16-1-1,8-24-2-2,8-32-3-2,8-64-5-2,8-96-3-1,8-160-3-2,8-320-1-1"  # t = 8, one more block in row 4
    at = upload(app_test(view="classify", stages=grown).run(), ZEBRA)
    assert not at.exception and not at.error
    yours, original = (subheader.value for subheader in at.subheader)
    assert yours == original  # growth keeps the logits
    assert "the logits are the original's" in " ".join(caption.value for caption in at.caption)


def test_weights_that_cannot_be_downloaded_say_how_to_get_them(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    # Never download in tests: torchvision's downloader is replaced by one that is offline.
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    at = app_test(view="classify").run()
    at.selectbox(key="weights").set_value("torchvision IMAGENET1K_V1").run()
    assert not at.exception
    assert "Could not download torchvision IMAGENET1K_V1" in at.error[0].value
    assert "MBV2_WEIGHTS" in at.error[0].value
    at.selectbox(key="weights").set_value("local mobilenet_v2_1.0_224_tf2_ptq.pth").run()
    assert not at.error and at.subheader  # the page keeps working


def test_class_activation_maps_for_the_edited_and_the_original_network():
    at = upload(app_test(view="classify", res="160").run(), ZEBRA)
    shown_before = len(at.image)
    at.toggle(key="classify_attention").set_value(True).run()
    assert not at.exception and not at.error
    captions = [image.captions[0] for image in at.image[shown_before:]]
    assert captions == ["Your architecture: what made it say zebra", "Original (as trained): what made it say zebra"]
    assert "Grad-CAM" in " ".join(caption.value for caption in at.caption)
