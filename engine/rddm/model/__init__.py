from rddm.model.rvae import RawVAE
